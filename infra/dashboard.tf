# The CloudWatch dashboard: the same questions as the Grafana dashboard
# (config/grafana/retainwise.json), answered from the ALB's and SQS's own
# metrics and the proxy/app counters the CloudWatch agent publishes, plus
# the state of every alarm.

locals {
  alb_dimensions = ["LoadBalancer", aws_lb.web.arn_suffix, "TargetGroup", aws_lb_target_group.proxy.arn_suffix]
  cluster_family = ["ClusterName", aws_ecs_cluster.main.name, "TaskDefinitionFamily", local.web_family]

  dashboard_widgets = [
    {
      type = "alarm", x = 0, y = 0, width = 24, height = 4
      properties = {
        title  = "Alarms"
        alarms = local.dashboard_alarms
      }
    },
    {
      type = "metric", x = 0, y = 4, width = 12, height = 6
      properties = {
        title  = "Requests by status class (proxy)"
        region = var.aws_region, stat = "Sum", period = 60, view = "timeSeries", stacked = true
        metrics = [for class in ["2xx", "3xx", "4xx", "5xx"] :
        concat([local.metrics_namespace, "retainwise_proxy_requests_total"], local.cluster_family, ["status_class", class])]
      }
    },
    {
      type = "metric", x = 12, y = 4, width = 12, height = 6
      properties = {
        title  = "Auth decisions (proxy)"
        region = var.aws_region, stat = "Sum", period = 60, view = "timeSeries", stacked = false
        metrics = [for result in ["allowed", "rejected", "public", "unavailable"] :
        concat([local.metrics_namespace, "retainwise_proxy_auth_decisions_total"], local.cluster_family, ["result", result])]
      }
    },
    {
      type = "metric", x = 0, y = 10, width = 12, height = 6
      properties = {
        title  = "Response time through the load balancer (s)"
        region = var.aws_region, period = 60, view = "timeSeries", stacked = false
        metrics = [
          concat(["AWS/ApplicationELB", "TargetResponseTime"], local.alb_dimensions, [{ stat = "p50", label = "p50" }]),
          concat(["AWS/ApplicationELB", "TargetResponseTime"], local.alb_dimensions, [{ stat = "p99", label = "p99" }]),
        ]
        annotations = { horizontal = [{ label = "alarm: p99 over 1 s", value = 1 }] }
      }
    },
    {
      type = "metric", x = 12, y = 10, width = 12, height = 6
      properties = {
        title  = "JWKS: fetch errors, stale keys, age of the keys (s)"
        region = var.aws_region, period = 300, view = "timeSeries", stacked = false
        metrics = [
          concat([local.metrics_namespace, "retainwise_proxy_jwks_fetches_total"], local.cluster_family, ["result", "error", { stat = "Sum", label = "failed fetches" }]),
          concat([local.metrics_namespace, "retainwise_proxy_jwks_stale"], local.cluster_family, [{ stat = "Maximum", label = "stale" }]),
          concat([local.metrics_namespace, "retainwise_proxy_jwks_last_success_age_seconds"], local.cluster_family, [{ stat = "Maximum", label = "age of the keys", yAxis = "right" }]),
        ]
      }
    },
    {
      type = "metric", x = 0, y = 16, width = 12, height = 6
      properties = {
        title  = "Token cache and upstream errors (proxy)"
        region = var.aws_region, stat = "Sum", period = 300, view = "timeSeries", stacked = false
        metrics = [
          concat([local.metrics_namespace, "retainwise_proxy_token_cache_hits_total"], local.cluster_family, [{ label = "cache hits" }]),
          concat([local.metrics_namespace, "retainwise_proxy_token_cache_misses_total"], local.cluster_family, [{ label = "cache misses" }]),
          concat([local.metrics_namespace, "retainwise_proxy_upstream_errors_total"], local.cluster_family, [{ label = "upstream errors (502/504)", yAxis = "right" }]),
        ]
      }
    },
    {
      type = "metric", x = 12, y = 16, width = 12, height = 6
      properties = {
        title  = "Jobs: waiting, oldest (s), dead letters, failed"
        region = var.aws_region, period = 60, view = "timeSeries", stacked = false
        metrics = [
          ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.jobs.name, { stat = "Maximum", label = "waiting jobs" }],
          ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", aws_sqs_queue.jobs.name, { stat = "Maximum", label = "oldest job (s)", yAxis = "right" }],
          ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.jobs_dlq.name, { stat = "Maximum", label = "dead letters" }],
          [local.metrics_namespace, "retainwise_app_jobs_total", "ClusterName", aws_ecs_cluster.main.name, "TaskDefinitionFamily", local.worker_family, "outcome", "failed", { stat = "Sum", label = "failed jobs" }],
        ]
      }
    },
    {
      type = "metric", x = 0, y = 22, width = 24, height = 6
      properties = {
        title  = "Tasks: healthy targets, CPU (%)"
        region = var.aws_region, period = 60, view = "timeSeries", stacked = false
        metrics = [
          concat(["AWS/ApplicationELB", "HealthyHostCount"], local.alb_dimensions, [{ stat = "Minimum", label = "healthy web tasks" }]),
          concat(["AWS/ApplicationELB", "UnHealthyHostCount"], local.alb_dimensions, [{ stat = "Maximum", label = "unhealthy web tasks" }]),
          ["AWS/ECS", "CPUUtilization", "ClusterName", aws_ecs_cluster.main.name, "ServiceName", aws_ecs_service.web.name, { stat = "Average", label = "web CPU", yAxis = "right" }],
          ["AWS/ECS", "CPUUtilization", "ClusterName", aws_ecs_cluster.main.name, "ServiceName", aws_ecs_service.worker.name, { stat = "Average", label = "worker CPU", yAxis = "right" }],
        ]
      }
    },
  ]

  dashboard_alarms = [
    aws_cloudwatch_metric_alarm.proxy_401_rate.arn,
    aws_cloudwatch_metric_alarm.proxy_keys_unavailable.arn,
    aws_cloudwatch_metric_alarm.proxy_jwks_fetch_errors.arn,
    aws_cloudwatch_metric_alarm.proxy_jwks_stale.arn,
    aws_cloudwatch_metric_alarm.proxy_token_cache_miss_rate.arn,
    aws_cloudwatch_metric_alarm.web_p99_latency.arn,
    aws_cloudwatch_metric_alarm.proxy_upstream_errors.arn,
    aws_cloudwatch_metric_alarm.worker_jobs_failing.arn,
    aws_cloudwatch_metric_alarm.dlq_depth.arn,
    aws_cloudwatch_metric_alarm.oldest_job_age.arn,
    aws_cloudwatch_metric_alarm.unhealthy_targets.arn,
  ]
}

resource "aws_cloudwatch_dashboard" "main" {
  dashboard_name = local.name
  dashboard_body = jsonencode({ widgets = local.dashboard_widgets })
}
