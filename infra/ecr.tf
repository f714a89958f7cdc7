# One repository per image. Tags are immutable (deploy by git commit) and
# every push is scanned.

locals {
  repositories = toset(["proxy", "app"])
}

resource "aws_ecr_repository" "image" {
  for_each = local.repositories

  name                 = "${var.project}/${each.key}"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.data.arn
  }
}

resource "aws_ecr_lifecycle_policy" "image" {
  for_each = local.repositories

  repository = aws_ecr_repository.image[each.key].name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the last 50 images: enough to roll back weeks"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = 50
      }
      action = { type = "expire" }
    }]
  })
}

locals {
  proxy_image = "${aws_ecr_repository.image["proxy"].repository_url}:${var.proxy_image_tag}"
  app_image   = "${aws_ecr_repository.image["app"].repository_url}:${var.app_image_tag}"
}
