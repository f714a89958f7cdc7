# Terraform and provider versions are pinned exactly: a plan made on one
# machine means the same thing on another. Bump them in a commit of their own.
terraform {
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "= 5.100.0"
    }
  }

  # State lives in S3 with DynamoDB locking. The bucket, table and key are
  # given at `terraform init -backend-config=backend.hcl` (see
  # backend.hcl.example), so no account-specific name is committed.
  backend "s3" {}
}
