# One customer-managed key for the data at rest: the bucket, the queues, the
# database and its secret, the logs and the images. Rotated yearly by AWS.

resource "aws_kms_key" "data" {
  description             = "${local.name}: data at rest (S3, SQS, RDS, Secrets Manager, logs, ECR)"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms_data.json
}

resource "aws_kms_alias" "data" {
  name          = "alias/${local.name}-data"
  target_key_id = aws_kms_key.data.key_id
}

data "aws_iam_policy_document" "kms_data" {
  #checkov:skip=CKV_AWS_111:This is a key policy: its Resource "*" means this one key, not every resource.
  #checkov:skip=CKV_AWS_356:This is a key policy: its Resource "*" means this one key, not every resource.
  #checkov:skip=CKV_AWS_109:This is a key policy: the account root statement is AWS's default, delegating to IAM, where no role has kms:Put*/Create*.
  # The account's IAM decides who uses the key (the standard key policy
  # statement); without it the key could become unmanageable. The roles'
  # IAM policies grant only the kms actions they need, on this key.
  statement {
    sid       = "AccountAdministersThroughIam"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  # CloudWatch Logs encrypts the log groups of this account with the key.
  statement {
    sid = "CloudWatchLogs"
    actions = [
      "kms:Encrypt",
      "kms:Decrypt",
      "kms:ReEncryptFrom",
      "kms:ReEncryptTo",
      "kms:GenerateDataKey",
      "kms:GenerateDataKeyWithoutPlaintext",
      "kms:DescribeKey",
    ]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.aws_region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${var.aws_region}:${local.account_id}:log-group:*"]
    }
  }

  # Alarms publish to the encrypted SNS topic; CloudWatch needs the key for that.
  statement {
    sid       = "CloudWatchAlarmsToSns"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}
