# The roles GitHub Actions assumes (.github/workflows/deploy.yml), through
# GitHub's OIDC provider: no AWS key is stored anywhere.
#
# | role      | assumed by (token `sub`)                          | may                                   |
# |-----------|---------------------------------------------------|---------------------------------------|
# | ci-plan   | repo:OWNER/NAME:pull_request                      | read the project's resources (no S3   |
# |           |                                                   | objects, no secret values); read and  |
# |           |                                                   | lock the state                        |
# | ci-deploy | repo:OWNER/NAME:environment:production            | the plan role's reads; push the two   |
# |           | (the environment admits only main: README)        | images; run the migrate task; pass    |
# |           |                                                   | the task roles; manage the project's  |
# |           |                                                   | resources                             |
#
# Rules the tests check (tests/tests/infra.rs): no wildcard action on a data
# service (S3, SQS, RDS, DynamoDB, Secrets Manager, KMS, ECR, SNS), and a
# wildcard action elsewhere only as a verb prefix (ec2:Describe*, never
# ec2:* or *); IAM writes only on roles named "${local.name}-*". The CI roles
# themselves are named "${var.project}-ci-*", outside that prefix, so the
# deploy role cannot widen its own rights: changing them is an operator's
# targeted apply (infra/README.md, "CI roles").

locals {
  github_oidc_host = "token.actions.githubusercontent.com"
  # ARN patterns of the project's resources, by service.
  project_buckets = "arn:${local.partition}:s3:::${local.name}-*"
  project_queues  = "arn:${local.partition}:sqs:${var.aws_region}:${local.account_id}:${local.name}-*"
  project_rds     = "arn:${local.partition}:rds:${var.aws_region}:${local.account_id}:*:${local.name}*"
  project_alarms  = "arn:${local.partition}:cloudwatch:${var.aws_region}:${local.account_id}:alarm:${local.name}-*"
  project_topics  = "arn:${local.partition}:sns:${var.aws_region}:${local.account_id}:${local.name}-*"
  project_roles   = "arn:${local.partition}:iam::${local.account_id}:role/${local.name}-*"
  project_logs = [
    "arn:${local.partition}:logs:${var.aws_region}:${local.account_id}:log-group:/${var.project}/${var.environment}/*",
    "arn:${local.partition}:logs:${var.aws_region}:${local.account_id}:log-group:aws-waf-logs-${local.name}*",
  ]
  state_bucket_arn = "arn:${local.partition}:s3:::${var.state_bucket}"
  lock_table_arn   = "arn:${local.partition}:dynamodb:${var.aws_region}:${local.account_id}:table/${var.state_lock_table}"
  task_role_arns = [
    aws_iam_role.execution.arn,
    aws_iam_role.web_task.arn,
    aws_iam_role.worker_task.arn,
    aws_iam_role.migrate_task.arn,
    aws_iam_role.scraper_execution.arn,
    aws_iam_role.scraper_task.arn,
  ]
}

resource "aws_iam_openid_connect_provider" "github" {
  url            = "https://${local.github_oidc_host}"
  client_id_list = ["sts.amazonaws.com"]
  # GitHub's published thumbprints; AWS trusts the provider's CA for this
  # host and keeps the list only for older SDKs.
  thumbprint_list = [
    "6938fd4d98bab03faadb97b34396831e3780aea1",
    "1c58a3a8518e8759bf075b76b750d4f2df264fcd",
  ]
}

# --- trust: who may assume each role ------------------------------------------------------

data "aws_iam_policy_document" "ci_plan_assume" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.github.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }
    # Pull requests of this repository only (from a fork too: a plan reads,
    # it never writes).
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:sub"
      values   = ["repo:${var.github_repository}:pull_request"]
    }
  }
}

data "aws_iam_policy_document" "ci_deploy_assume" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.github.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }
    # Jobs of the protected "production" environment only; which branches
    # may deploy to it is the environment's rule (main only, README).
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:sub"
      values   = ["repo:${var.github_repository}:environment:production"]
    }
  }
}

resource "aws_iam_role" "ci_plan" {
  name                 = "${var.project}-ci-plan"
  assume_role_policy   = data.aws_iam_policy_document.ci_plan_assume.json
  max_session_duration = 3600
}

resource "aws_iam_role" "ci_deploy" {
  name                 = "${var.project}-ci-deploy"
  assume_role_policy   = data.aws_iam_policy_document.ci_deploy_assume.json
  max_session_duration = 7200
}

# --- plan: read the project and the state ---------------------------------------------------

data "aws_iam_policy_document" "ci_read" {
  #checkov:skip=CKV_AWS_356:Read verbs only (Describe/List/Get) on services without customer data; most have no resource-level permission, and Terraform's refresh of the VPC, load balancer, WAF and cluster needs them account-wide. Data services and IAM are scoped to the project's ARNs below.

  # Terraform's refresh of the network, load balancer, cluster, alarms and
  # roles. Read verbs only, on services that hold no customer data; these
  # describe calls have no resource-level permissions.
  statement {
    sid = "DescribeInfrastructure"
    actions = [
      "ec2:Describe*",
      "elasticloadbalancing:Describe*",
      "ecs:Describe*",
      "ecs:List*",
      "application-autoscaling:Describe*",
      "application-autoscaling:ListTagsForResource",
      "cloudwatch:Describe*",
      "cloudwatch:GetDashboard",
      "cloudwatch:ListTagsForResource",
      "logs:Describe*",
      "logs:ListTagsForResource",
      "logs:ListTagsLogGroup",
      "wafv2:Get*",
      "wafv2:List*",
      "kms:ListAliases",
      "sts:GetCallerIdentity",
    ]
    resources = ["*"]
  }

  statement {
    sid = "ReadRoles"
    actions = [
      "iam:GetRole",
      "iam:GetRolePolicy",
      "iam:ListRolePolicies",
      "iam:ListAttachedRolePolicies",
      "iam:ListInstanceProfilesForRole",
    ]
    resources = [local.project_roles, "arn:${local.partition}:iam::${local.account_id}:role/${var.project}-ci-*"]
  }

  statement {
    sid       = "ReadOidcProvider"
    actions   = ["iam:GetOpenIDConnectProvider"]
    resources = [aws_iam_openid_connect_provider.github.arn]
  }

  # Data services: their configuration, never their contents.
  statement {
    sid = "ReadBucketSettings"
    actions = [
      "s3:GetAccelerateConfiguration",
      "s3:GetBucketAcl",
      "s3:GetBucketCORS",
      "s3:GetBucketLocation",
      "s3:GetBucketLogging",
      "s3:GetBucketNotification",
      "s3:GetBucketObjectLockConfiguration",
      "s3:GetBucketOwnershipControls",
      "s3:GetBucketPolicy",
      "s3:GetBucketPublicAccessBlock",
      "s3:GetBucketRequestPayment",
      "s3:GetBucketTagging",
      "s3:GetBucketVersioning",
      "s3:GetBucketWebsite",
      "s3:GetEncryptionConfiguration",
      "s3:GetLifecycleConfiguration",
      "s3:GetReplicationConfiguration",
      # HeadBucket, which Terraform's refresh calls, needs ListBucket. It
      # lists keys (ids: uploads/<uuid>), never an object's contents.
      "s3:ListBucket",
    ]
    resources = [local.project_buckets]
  }

  statement {
    sid       = "ReadQueueSettings"
    actions   = ["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ListQueueTags"]
    resources = [local.project_queues]
  }

  statement {
    sid = "ReadDatabaseSettings"
    actions = [
      "rds:DescribeDBInstances",
      "rds:DescribeDBParameterGroups",
      "rds:DescribeDBParameters",
      "rds:DescribeDBSubnetGroups",
      "rds:ListTagsForResource",
    ]
    resources = [local.project_rds]
  }

  statement {
    sid       = "ReadKeySettings"
    actions   = ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags"]
    resources = [aws_kms_key.data.arn]
  }

  statement {
    sid       = "ReadRepositorySettings"
    actions   = ["ecr:DescribeRepositories", "ecr:GetLifecyclePolicy", "ecr:ListTagsForResource"]
    resources = [for repo in aws_ecr_repository.image : repo.arn]
  }

  statement {
    sid       = "ReadTopicSettings"
    actions   = ["sns:GetTopicAttributes", "sns:ListTagsForResource", "sns:GetSubscriptionAttributes"]
    resources = [local.project_topics]
  }

  # The state: read it, and take and release the lock.
  statement {
    sid       = "StateList"
    actions   = ["s3:ListBucket"]
    resources = [local.state_bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [var.state_key, "${var.state_key}*"]
    }
  }

  statement {
    sid       = "StateRead"
    actions   = ["s3:GetObject"]
    resources = ["${local.state_bucket_arn}/${var.state_key}"]
  }

  statement {
    sid       = "StateLock"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"]
    resources = [local.lock_table_arn]
  }
}

resource "aws_iam_role_policy" "ci_plan_read" {
  name   = "read-project"
  role   = aws_iam_role.ci_plan.id
  policy = data.aws_iam_policy_document.ci_read.json
}

resource "aws_iam_role_policy" "ci_deploy_read" {
  name   = "read-project"
  role   = aws_iam_role.ci_deploy.id
  policy = data.aws_iam_policy_document.ci_read.json
}

# --- deploy: images, migrations, and the project's resources ------------------------------------

data "aws_iam_policy_document" "ci_deploy" {
  statement {
    sid       = "StateWrite"
    actions   = ["s3:PutObject"]
    resources = ["${local.state_bucket_arn}/${var.state_key}"]
  }

  # GetAuthorizationToken has no resource type: AWS requires "*".
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "PushImages"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:DescribeImages",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:UploadLayerPart",
      "ecr:PutLifecyclePolicy",
      "ecr:PutImageScanningConfiguration",
      "ecr:PutImageTagMutability",
      "ecr:TagResource",
      "ecr:UntagResource",
    ]
    resources = [for repo in aws_ecr_repository.image : repo.arn]
  }

  # The migrate task, in this cluster only.
  statement {
    sid       = "RunMigrations"
    actions   = ["ecs:RunTask"]
    resources = ["arn:${local.partition}:ecs:${var.aws_region}:${local.account_id}:task-definition/${local.name}-migrate:*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.main.arn]
    }
  }

  statement {
    sid = "ManageServices"
    actions = [
      "ecs:CreateService",
      "ecs:UpdateService",
      "ecs:DeleteService",
      "ecs:UpdateCluster",
      "ecs:UpdateClusterSettings",
      "ecs:PutClusterCapacityProviders",
      "ecs:TagResource",
      "ecs:UntagResource",
    ]
    resources = [
      aws_ecs_cluster.main.arn,
      "arn:${local.partition}:ecs:${var.aws_region}:${local.account_id}:service/${aws_ecs_cluster.main.name}/*",
      "arn:${local.partition}:ecs:${var.aws_region}:${local.account_id}:task-definition/${local.name}-*:*",
    ]
  }

  # Task definitions have no resource-level permission for these calls.
  statement {
    sid       = "TaskDefinitions"
    actions   = ["ecs:RegisterTaskDefinition", "ecs:DeregisterTaskDefinition"]
    resources = ["*"]
  }

  # The task roles only, and only to ECS tasks.
  statement {
    sid       = "PassTaskRoles"
    actions   = ["iam:PassRole"]
    resources = local.task_role_arns
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }

  statement {
    sid = "ManageProjectRoles"
    actions = [
      "iam:CreateRole",
      "iam:DeleteRole",
      "iam:UpdateRole",
      "iam:UpdateAssumeRolePolicy",
      "iam:PutRolePolicy",
      "iam:DeleteRolePolicy",
      "iam:TagRole",
      "iam:UntagRole",
    ]
    resources = [local.project_roles]
  }

  # Network, load balancer, firewall, scaling: services without customer
  # data, where Terraform's writes span many verbs. Verb prefixes, in this
  # region only.
  statement {
    sid = "ManageNetworkAndBalancer"
    actions = [
      "ec2:Create*",
      "ec2:Delete*",
      "ec2:Modify*",
      "ec2:Authorize*",
      "ec2:Revoke*",
      "ec2:Associate*",
      "ec2:Disassociate*",
      "ec2:Replace*",
      "ec2:UpdateSecurityGroupRuleDescriptionsIngress",
      "ec2:UpdateSecurityGroupRuleDescriptionsEgress",
      "elasticloadbalancing:Create*",
      "elasticloadbalancing:Delete*",
      "elasticloadbalancing:Modify*",
      "elasticloadbalancing:Add*",
      "elasticloadbalancing:Remove*",
      "elasticloadbalancing:Set*",
      "wafv2:Create*",
      "wafv2:Delete*",
      "wafv2:Update*",
      "wafv2:Associate*",
      "wafv2:Disassociate*",
      "wafv2:PutLoggingConfiguration",
      "wafv2:TagResource",
      "application-autoscaling:RegisterScalableTarget",
      "application-autoscaling:DeregisterScalableTarget",
      "application-autoscaling:PutScalingPolicy",
      "application-autoscaling:DeleteScalingPolicy",
      "application-autoscaling:TagResource",
    ]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestedRegion"
      values   = [var.aws_region]
    }
  }

  statement {
    sid = "ManageAlarmsAndDashboards"
    actions = [
      "cloudwatch:PutMetricAlarm",
      "cloudwatch:DeleteAlarms",
      "cloudwatch:TagResource",
      "cloudwatch:UntagResource",
    ]
    resources = [local.project_alarms]
  }

  statement {
    sid       = "ManageDashboards"
    actions   = ["cloudwatch:PutDashboard", "cloudwatch:DeleteDashboards"]
    resources = ["arn:${local.partition}:cloudwatch::${local.account_id}:dashboard/${local.name}"]
  }

  statement {
    sid = "ManageLogGroups"
    actions = [
      "logs:CreateLogGroup",
      "logs:DeleteLogGroup",
      "logs:PutRetentionPolicy",
      "logs:AssociateKmsKey",
      "logs:TagResource",
      "logs:UntagResource",
      "logs:TagLogGroup",
    ]
    resources = local.project_logs
  }

  statement {
    sid = "ManageBucketSettings"
    actions = [
      "s3:CreateBucket",
      "s3:PutBucketLogging",
      "s3:PutBucketOwnershipControls",
      "s3:PutBucketPolicy",
      "s3:PutBucketPublicAccessBlock",
      "s3:PutBucketTagging",
      "s3:PutBucketVersioning",
      "s3:PutEncryptionConfiguration",
      "s3:PutLifecycleConfiguration",
    ]
    resources = [local.project_buckets]
  }

  statement {
    sid       = "ManageQueueSettings"
    actions   = ["sqs:CreateQueue", "sqs:SetQueueAttributes", "sqs:TagQueue", "sqs:UntagQueue"]
    resources = [local.project_queues]
  }

  statement {
    sid = "ManageDatabaseSettings"
    actions = [
      "rds:ModifyDBInstance",
      "rds:ModifyDBParameterGroup",
      "rds:ModifyDBSubnetGroup",
      "rds:AddTagsToResource",
      "rds:RemoveTagsFromResource",
    ]
    resources = [local.project_rds]
  }

  statement {
    sid       = "ManageTopicSettings"
    actions   = ["sns:SetTopicAttributes", "sns:Subscribe", "sns:Unsubscribe", "sns:TagResource", "sns:UntagResource"]
    resources = [local.project_topics]
  }

  statement {
    sid       = "ManageKeySettings"
    actions   = ["kms:PutKeyPolicy", "kms:EnableKeyRotation", "kms:TagResource", "kms:UntagResource", "kms:UpdateKeyDescription"]
    resources = [aws_kms_key.data.arn]
  }
}

resource "aws_iam_role_policy" "ci_deploy" {
  name   = "deploy-project"
  role   = aws_iam_role.ci_deploy.id
  policy = data.aws_iam_policy_document.ci_deploy.json
}
