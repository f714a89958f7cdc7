# Logs, metrics and alarms.
#
# Prometheus: a CloudWatch agent service discovers the cluster's tasks by
# their docker labels (ECS_PROMETHEUS_EXPORTER_PORT, ..._METRICS_PATH,
# ..._JOB_NAME, set in ecs.tf), scrapes the proxy's admin port (9090) and
# the app's metrics port (9100), and publishes the declared series as
# CloudWatch metrics in the "RetainWise/Prometheus" namespace (embedded
# metric format). The agent reports counters as the increase since the last
# scrape, so Sum over a period is the number of events in it.

locals {
  metrics_namespace = "RetainWise/Prometheus"
  web_family        = aws_ecs_task_definition.web.family
  worker_family     = aws_ecs_task_definition.worker.family
  # Alarm descriptions end with the runbook section: docs/runbook.md.
  runbook = "Runbook: docs/runbook.md#"
}

# --- log groups ------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "service" {
  for_each = toset(["web", "worker", "migrate"])

  name              = "/${var.project}/${var.environment}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.data.arn
}

resource "aws_cloudwatch_log_group" "scraper" {
  name              = "/${var.project}/${var.environment}/scraper"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.data.arn
}

# Where the agent writes the scraped metrics (embedded metric format).
resource "aws_cloudwatch_log_group" "prometheus" {
  name              = "/${var.project}/${var.environment}/prometheus"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.data.arn
}

resource "aws_cloudwatch_log_group" "flow" {
  name              = "/${var.project}/${var.environment}/vpc-flow"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.data.arn
}

# WAF requires the "aws-waf-logs-" prefix.
resource "aws_cloudwatch_log_group" "waf" {
  name              = "aws-waf-logs-${local.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.data.arn
}

# --- Prometheus scraper: CloudWatch agent with ECS service discovery ------------------------------

locals {
  cwagent_config = {
    agent = { region = var.aws_region }
    logs = {
      force_flush_interval = 5
      metrics_collected = {
        prometheus = {
          cluster_name           = aws_ecs_cluster.main.name
          log_group_name         = aws_cloudwatch_log_group.prometheus.name
          prometheus_config_path = "env:PROMETHEUS_CONFIG_CONTENT"
          ecs_service_discovery = {
            sd_frequency      = "1m"
            sd_result_file    = "/tmp/cwagent_ecs_auto_sd.yaml"
            sd_target_cluster = aws_ecs_cluster.main.name
            sd_cluster_region = var.aws_region
            docker_label = {
              sd_port_label         = "ECS_PROMETHEUS_EXPORTER_PORT"
              sd_metrics_path_label = "ECS_PROMETHEUS_METRICS_PATH"
              sd_job_name_label     = "ECS_PROMETHEUS_JOB_NAME"
            }
          }
          emf_processor = {
            metric_namespace         = local.metrics_namespace
            metric_declaration_dedup = true
            metric_declaration = [
              {
                source_labels    = ["job"]
                label_matcher    = "^retainwise-proxy$"
                dimensions       = [["ClusterName", "TaskDefinitionFamily"], ["ClusterName", "TaskDefinitionFamily", "status_class"]]
                metric_selectors = ["^retainwise_proxy_requests_total$"]
              },
              {
                source_labels    = ["job"]
                label_matcher    = "^retainwise-proxy$"
                dimensions       = [["ClusterName", "TaskDefinitionFamily", "result"], ["ClusterName", "TaskDefinitionFamily", "result", "reason"]]
                metric_selectors = ["^retainwise_proxy_auth_decisions_total$", "^retainwise_proxy_jwks_fetches_total$"]
              },
              {
                source_labels = ["job"]
                label_matcher = "^retainwise-proxy$"
                dimensions    = [["ClusterName", "TaskDefinitionFamily"]]
                metric_selectors = [
                  "^retainwise_proxy_jwks_stale$",
                  "^retainwise_proxy_jwks_last_success_age_seconds$",
                  "^retainwise_proxy_jwks_keys$",
                  "^retainwise_proxy_upstream_errors_total$",
                  "^retainwise_proxy_in_flight_requests$",
                  "^retainwise_proxy_token_cache_hits_total$",
                  "^retainwise_proxy_token_cache_misses_total$",
                ]
              },
              {
                source_labels    = ["job"]
                label_matcher    = "^retainwise-worker$"
                dimensions       = [["ClusterName", "TaskDefinitionFamily", "outcome"]]
                metric_selectors = ["^retainwise_app_jobs_total$"]
              },
              {
                source_labels    = ["job"]
                label_matcher    = "^retainwise-(app|worker)$"
                dimensions       = [["ClusterName", "TaskDefinitionFamily"]]
                metric_selectors = ["^retainwise_app_.*"]
              },
            ]
          }
        }
      }
    }
  }

  prometheus_config = {
    global = {
      scrape_interval = "30s"
      scrape_timeout  = "10s"
    }
    scrape_configs = [{
      job_name        = "cwagent-ecs-file-sd-config"
      sample_limit    = 10000
      file_sd_configs = [{ files = ["/tmp/cwagent_ecs_auto_sd.yaml"] }]
    }]
  }
}

resource "aws_ecs_task_definition" "scraper" {
  family                   = "${local.name}-scraper"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  execution_role_arn       = aws_iam_role.scraper_execution.arn
  task_role_arn            = aws_iam_role.scraper_task.arn

  #checkov:skip=CKV_AWS_336:The CloudWatch agent writes its translated configuration under /opt/aws/amazon-cloudwatch-agent at start; the app and proxy containers do run read-only.

  container_definitions = jsonencode([
    {
      name      = "cloudwatch-agent"
      image     = var.cloudwatch_agent_image
      essential = true
      environment = [
        { name = "CW_CONFIG_CONTENT", value = jsonencode(local.cwagent_config) },
        { name = "PROMETHEUS_CONFIG_CONTENT", value = yamlencode(local.prometheus_config) },
      ]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          "awslogs-group"         = aws_cloudwatch_log_group.scraper.name
          "awslogs-region"        = var.aws_region
          "awslogs-stream-prefix" = "cwagent"
        }
      }
    },
  ])
}

resource "aws_ecs_service" "scraper" {
  name             = "${local.name}-scraper"
  cluster          = aws_ecs_cluster.main.id
  task_definition  = aws_ecs_task_definition.scraper.arn
  desired_count    = 1
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  network_configuration {
    subnets          = aws_subnet.private[*].id
    security_groups  = [aws_security_group.scraper.id]
    assign_public_ip = false
  }
}

# --- alarms ------------------------------------------------------------------------------------

resource "aws_sns_topic" "alarms" {
  name              = "${local.name}-alarms"
  kms_master_key_id = aws_kms_key.data.id
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count = var.alarm_email == "" ? 0 : 1

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

locals {
  proxy_dimensions = {
    ClusterName          = aws_ecs_cluster.main.name
    TaskDefinitionFamily = local.web_family
  }
  alarm_actions = [aws_sns_topic.alarms.arn]
}

# More than 10 % of requests answered 401 (rejected tokens) over 5 minutes,
# twice in a row, once there is traffic enough for a rate to mean something.
resource "aws_cloudwatch_metric_alarm" "proxy_401_rate" {
  alarm_name          = "${local.name}-proxy-401-rate"
  alarm_description   = "More than 10% of proxied requests were rejected with 401 (expired clocks, wrong issuer/azp, an attack). ${local.runbook}proxyhigh401rate"
  comparison_operator = "GreaterThanThreshold"
  threshold           = 10
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "rejected"
    return_data = false
    metric {
      namespace   = local.metrics_namespace
      metric_name = "retainwise_proxy_auth_decisions_total"
      dimensions  = merge(local.proxy_dimensions, { result = "rejected" })
      period      = 300
      stat        = "Sum"
    }
  }

  metric_query {
    id          = "requests"
    return_data = false
    metric {
      namespace   = local.metrics_namespace
      metric_name = "retainwise_proxy_requests_total"
      dimensions  = local.proxy_dimensions
      period      = 300
      stat        = "Sum"
    }
  }

  metric_query {
    id          = "rate"
    label       = "401 rate (%)"
    expression  = "IF(requests >= 50, 100 * rejected / requests, 0)"
    return_data = true
  }
}

# Any 503 because no usable keys are loaded (never fetched, or older than
# JWKS_CACHE_MAX_AGE): every authenticated request is failing.
resource "aws_cloudwatch_metric_alarm" "proxy_keys_unavailable" {
  alarm_name          = "${local.name}-proxy-keys-unavailable"
  alarm_description   = "The proxy answered 503: no usable JWKS keys. ${local.runbook}proxykeysunavailable"
  namespace           = local.metrics_namespace
  metric_name         = "retainwise_proxy_auth_decisions_total"
  dimensions          = merge(local.proxy_dimensions, { result = "unavailable", reason = "keys_unavailable" })
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# More than 3 JWKS fetches failing in 5 minutes: the proxy rides on cached keys for up to
# JWKS_CACHE_MAX_AGE, so this is the early warning before 503s.
resource "aws_cloudwatch_metric_alarm" "proxy_jwks_fetch_errors" {
  alarm_name          = "${local.name}-proxy-jwks-fetch-errors"
  alarm_description   = "More than 3 JWKS fetches failed in 5 minutes (Clerk unreachable, NAT, DNS, TLS). ${local.runbook}proxyjwksfetchfailures"
  namespace           = local.metrics_namespace
  metric_name         = "retainwise_proxy_jwks_fetches_total"
  dimensions          = merge(local.proxy_dimensions, { result = "error" })
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 3
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# Serving on stale keys (last success older than the refresh interval).
resource "aws_cloudwatch_metric_alarm" "proxy_jwks_stale" {
  alarm_name          = "${local.name}-proxy-jwks-stale"
  alarm_description   = "A proxy is verifying with stale JWKS keys. ${local.runbook}proxyjwksfetchfailures"
  namespace           = local.metrics_namespace
  metric_name         = "retainwise_proxy_jwks_stale"
  dimensions          = local.proxy_dimensions
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# A job failed job_max_receives times and is waiting in the dead-letter queue.
resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  alarm_name          = "${local.name}-jobs-dlq-not-empty"
  alarm_description   = "A prediction job reached the dead-letter queue. ${local.runbook}deadletterqueuenotempty"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.jobs_dlq.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# Jobs waiting too long: workers down, stuck or not scaling.
resource "aws_cloudwatch_metric_alarm" "oldest_job_age" {
  alarm_name          = "${local.name}-jobs-oldest-message-age"
  alarm_description   = "The oldest queued job has waited more than ${var.oldest_message_alarm_seconds} s. ${local.runbook}queueoldestjobtooold"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = aws_sqs_queue.jobs.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.oldest_message_alarm_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# The load balancer sees no healthy proxy in some AZ.
resource "aws_cloudwatch_metric_alarm" "unhealthy_targets" {
  alarm_name          = "${local.name}-web-unhealthy-targets"
  alarm_description   = "Web tasks fail the /readyz check. ${local.runbook}webunhealthytargets"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "UnHealthyHostCount"
  dimensions          = { LoadBalancer = aws_lb.web.arn_suffix, TargetGroup = aws_lb_target_group.proxy.arn_suffix }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# Over half of the verified tokens missed the token cache, for 15 minutes,
# with at least 60 lookups in each 5 minutes.
resource "aws_cloudwatch_metric_alarm" "proxy_token_cache_miss_rate" {
  alarm_name          = "${local.name}-proxy-token-cache-miss-rate"
  alarm_description   = "Over 50% of token lookups missed the proxy's token cache for 15 minutes. ${local.runbook}proxytokencachemissrate"
  comparison_operator = "GreaterThanThreshold"
  threshold           = 50
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "hits"
    return_data = false
    metric {
      namespace   = local.metrics_namespace
      metric_name = "retainwise_proxy_token_cache_hits_total"
      dimensions  = local.proxy_dimensions
      period      = 300
      stat        = "Sum"
    }
  }

  metric_query {
    id          = "misses"
    return_data = false
    metric {
      namespace   = local.metrics_namespace
      metric_name = "retainwise_proxy_token_cache_misses_total"
      dimensions  = local.proxy_dimensions
      period      = 300
      stat        = "Sum"
    }
  }

  metric_query {
    id          = "miss_rate"
    label       = "token cache miss rate (%)"
    expression  = "IF(hits + misses >= 60, 100 * misses / (hits + misses), 0)"
    return_data = true
  }
}

# p99 of the time the proxy takes to answer the load balancer over 1 s for
# 10 minutes, with at least 30 requests a minute. The ALB's own metric:
# the CloudWatch agent does not carry Prometheus histograms.
resource "aws_cloudwatch_metric_alarm" "web_p99_latency" {
  alarm_name          = "${local.name}-web-p99-latency"
  alarm_description   = "The p99 response time of the web tasks is over 1 s for 10 minutes. ${local.runbook}proxyhighlatency"
  comparison_operator = "GreaterThanThreshold"
  threshold           = 1
  evaluation_periods  = 10
  datapoints_to_alarm = 10
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "p99"
    return_data = false
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "TargetResponseTime"
      dimensions  = { LoadBalancer = aws_lb.web.arn_suffix, TargetGroup = aws_lb_target_group.proxy.arn_suffix }
      period      = 60
      stat        = "p99"
    }
  }

  metric_query {
    id          = "requests"
    return_data = false
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      dimensions  = { LoadBalancer = aws_lb.web.arn_suffix, TargetGroup = aws_lb_target_group.proxy.arn_suffix }
      period      = 60
      stat        = "Sum"
    }
  }

  metric_query {
    id          = "guarded_p99"
    label       = "p99 response time (s)"
    expression  = "IF(requests >= 30, p99, 0)"
    return_data = true
  }
}

# Over 1 % of requests failed upstream (the proxy answered 502/504) for 5
# minutes, with at least 30 requests in them.
resource "aws_cloudwatch_metric_alarm" "proxy_upstream_errors" {
  alarm_name          = "${local.name}-proxy-upstream-errors"
  alarm_description   = "Over 1% of requests could not reach the app or timed out (502/504) for 5 minutes. ${local.runbook}proxyupstreamerrors"
  comparison_operator = "GreaterThanThreshold"
  threshold           = 1
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "errors"
    return_data = false
    metric {
      namespace   = local.metrics_namespace
      metric_name = "retainwise_proxy_upstream_errors_total"
      dimensions  = local.proxy_dimensions
      period      = 300
      stat        = "Sum"
    }
  }

  metric_query {
    id          = "requests"
    return_data = false
    metric {
      namespace   = local.metrics_namespace
      metric_name = "retainwise_proxy_requests_total"
      dimensions  = local.proxy_dimensions
      period      = 300
      stat        = "Sum"
    }
  }

  metric_query {
    id          = "error_rate"
    label       = "upstream error rate (%)"
    expression  = "IF(requests >= 30, 100 * FILL(errors, 0) / requests, 0)"
    return_data = true
  }
}

# Any prediction job failed for good (or went to the dead letters) in 15 minutes.
resource "aws_cloudwatch_metric_alarm" "worker_jobs_failing" {
  alarm_name          = "${local.name}-worker-jobs-failing"
  alarm_description   = "Prediction jobs failed in the last 15 minutes. ${local.runbook}workerjobsfailing"
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "failed"
    return_data = false
    metric {
      namespace   = local.metrics_namespace
      metric_name = "retainwise_app_jobs_total"
      dimensions  = { ClusterName = aws_ecs_cluster.main.name, TaskDefinitionFamily = local.worker_family, outcome = "failed" }
      period      = 900
      stat        = "Sum"
    }
  }

  metric_query {
    id          = "dead_lettered"
    return_data = false
    metric {
      namespace   = local.metrics_namespace
      metric_name = "retainwise_app_jobs_total"
      dimensions  = { ClusterName = aws_ecs_cluster.main.name, TaskDefinitionFamily = local.worker_family, outcome = "dead_lettered" }
      period      = 900
      stat        = "Sum"
    }
  }

  metric_query {
    id          = "failing"
    label       = "failed jobs"
    expression  = "FILL(failed, 0) + FILL(dead_lettered, 0)"
    return_data = true
  }
}
