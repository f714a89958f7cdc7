# The job queue between the web app (producer) and the workers (consumers).
# A job that fails job_max_receives times moves to the dead-letter queue,
# where an alarm catches it (observability.tf).

locals {
  # Above the longest job, so a job still running is never handed to a second
  # worker by the queue's default. The worker also sets and renews its own,
  # shorter lease per message (APP_JOB_LEASE_SECS), so a crashed worker's
  # job comes back in about a minute rather than after this.
  queue_visibility_timeout = var.longest_job_seconds + 300
}

resource "aws_sqs_queue" "jobs_dlq" {
  name                              = "${local.name}-jobs-dlq"
  message_retention_seconds         = 1209600 # 14 days, the SQS maximum: time to investigate and redrive
  kms_master_key_id                 = aws_kms_key.data.arn
  kms_data_key_reuse_period_seconds = 300
}

resource "aws_sqs_queue" "jobs" {
  name                              = "${local.name}-jobs"
  visibility_timeout_seconds        = local.queue_visibility_timeout
  message_retention_seconds         = 345600 # 4 days: a weekend of workers down loses nothing
  receive_wait_time_seconds         = 20     # long polling, as the worker does (APP_SQS_WAIT_SECS)
  kms_master_key_id                 = aws_kms_key.data.arn
  kms_data_key_reuse_period_seconds = 300

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.jobs_dlq.arn
    maxReceiveCount     = var.job_max_receives
  })

  lifecycle {
    precondition {
      condition     = local.queue_visibility_timeout > var.longest_job_seconds && local.queue_visibility_timeout <= 43200
      error_message = "The visibility timeout must be above the longest job and at most 12 hours."
    }
  }
}

# Only the jobs queue may send to the dead-letter queue.
resource "aws_sqs_queue_redrive_allow_policy" "jobs_dlq" {
  queue_url = aws_sqs_queue.jobs_dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.jobs.arn]
  })
}

# TLS only, as for the bucket.
resource "aws_sqs_queue_policy" "jobs" {
  for_each = {
    jobs = aws_sqs_queue.jobs
    dlq  = aws_sqs_queue.jobs_dlq
  }

  queue_url = each.value.id
  policy    = data.aws_iam_policy_document.queue_tls_only[each.key].json
}

data "aws_iam_policy_document" "queue_tls_only" {
  for_each = {
    jobs = aws_sqs_queue.jobs.arn
    dlq  = aws_sqs_queue.jobs_dlq.arn
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}
