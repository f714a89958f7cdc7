# The ECS cluster, the web task (proxy + app in one network namespace), the
# worker task and the one-off migration task.
#
#   web task:  proxy :8080 (ALB) :9090 (admin) ──127.0.0.1:3000──▶ app
#   worker:    retainwise-app worker (no inbound port but metrics)
#   migrate:   retainwise-app migrate (run before a deploy, README)

locals {
  # Stop sequence of a web task: the target is deregistered and drained for
  # proxy_drain_seconds, then the proxy gets SIGTERM (its /readyz turns 503,
  # in-flight requests finish within the same drain time) and only after it
  # exits does the app get SIGTERM (the proxy depends on the app, and ECS
  # stops containers in reverse dependency order). stopTimeout leaves 10 s
  # above the drain before SIGKILL.
  stop_timeout = var.proxy_drain_seconds + 10

  log_options = {
    "awslogs-region"  = var.aws_region
    "mode"            = "non-blocking"
    "max-buffer-size" = "25m"
  }

  # Settings shared by every container running the app image (DESIGN.md section 3).
  app_environment = [
    { name = "DATABASE_URL", value = local.database_url },
    { name = "STORAGE_URL", value = "s3://${aws_s3_bucket.data.id}/${var.storage_prefix}" },
    { name = "QUEUE_URL", value = aws_sqs_queue.jobs.url },
    { name = "AWS_REGION", value = var.aws_region },
    { name = "APP_JOB_MAX_ATTEMPTS", value = tostring(var.job_max_receives) },
    { name = "APP_SHUTDOWN_GRACE_SECS", value = tostring(local.stop_timeout - 5) },
  ]
  app_secrets = [
    { name = "PGPASSWORD", valueFrom = local.db_password_ref },
  ]
}

resource "aws_ecs_cluster" "main" {
  name = local.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_cluster_capacity_providers" "main" {
  cluster_name       = aws_ecs_cluster.main.name
  capacity_providers = ["FARGATE"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

# --- web: proxy + app ------------------------------------------------------------------

resource "aws_ecs_task_definition" "web" {
  family                   = "${local.name}-web"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.web_cpu
  memory                   = var.web_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.web_task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  # Scratch space for the app (the root filesystems are read-only).
  volume {
    name = "app-tmp"
  }

  container_definitions = jsonencode([
    {
      name                   = "proxy"
      image                  = local.proxy_image
      essential              = true
      readonlyRootFilesystem = true
      user                   = "65532:65532"
      stopTimeout            = local.stop_timeout
      portMappings = [
        { name = "proxy", containerPort = 8080, protocol = "tcp" },
        { name = "proxy-admin", containerPort = 9090, protocol = "tcp" },
      ]
      # Every name here is one the proxy reads (proxy/src/settings.rs, KEYS);
      # tests/tests/infra.rs checks it.
      environment = [
        { name = "PROXY_LISTEN", value = "0.0.0.0:8080" },
        { name = "PROXY_ADMIN_LISTEN", value = "0.0.0.0:9090" },
        { name = "PROXY_UPSTREAM", value = "http://127.0.0.1:3000" },
        { name = "PROXY_PUBLIC_PATHS", value = join(",", var.proxy_public_paths) },
        { name = "CLERK_JWKS_URL", value = var.clerk_jwks_url },
        { name = "CLERK_ISSUER_URL", value = var.clerk_issuer_url },
        { name = "CLERK_AUTHORIZED_PARTIES", value = join(",", var.clerk_authorized_parties) },
        # Empty means unset: aud is then not checked.
        { name = "CLERK_AUDIENCE", value = join(",", var.clerk_audience) },
        { name = "JWKS_CACHE_TTL", value = tostring(var.jwks_cache_ttl_seconds) },
        { name = "JWKS_CACHE_MAX_AGE", value = tostring(var.jwks_cache_max_age_seconds) },
        { name = "PROXY_DRAIN_TIMEOUT", value = tostring(var.proxy_drain_seconds) },
        { name = "PROXY_UPSTREAM_TIMEOUT", value = tostring(var.proxy_upstream_timeout_seconds) },
        { name = "PROXY_IDLE_TIMEOUT", value = tostring(var.proxy_idle_timeout_seconds) },
        { name = "PROXY_HEADER_READ_TIMEOUT", value = tostring(var.proxy_header_read_timeout_seconds) },
        { name = "PROXY_BODY_IDLE_TIMEOUT", value = tostring(var.proxy_body_idle_timeout_seconds) },
        # Empty means unset: no CORS headers at all.
        { name = "PROXY_CORS_ALLOWED_ORIGINS", value = join(",", var.proxy_cors_allowed_origins) },
        { name = "PROXY_LOG", value = "info" },
      ]
      # No shell or curl in the image: the binary checks itself.
      healthCheck = {
        command     = ["CMD", "/usr/local/bin/retainwise-proxy", "healthcheck", "--url", "http://127.0.0.1:9090/healthz"]
        interval    = 10
        timeout     = 5
        retries     = 3
        startPeriod = 15
      }
      dependsOn = [
        { containerName = "app", condition = "HEALTHY" },
      ]
      dockerLabels = {
        ECS_PROMETHEUS_EXPORTER_PORT = "9090"
        ECS_PROMETHEUS_METRICS_PATH  = "/metrics"
        ECS_PROMETHEUS_JOB_NAME      = "retainwise-proxy"
      }
      logConfiguration = {
        logDriver = "awslogs"
        options   = merge(local.log_options, { "awslogs-group" = aws_cloudwatch_log_group.service["web"].name, "awslogs-stream-prefix" = "proxy" })
      }
    },
    {
      name                   = "app"
      image                  = local.app_image
      essential              = true
      readonlyRootFilesystem = true
      user                   = "65532:65532"
      stopTimeout            = local.stop_timeout
      command                = ["serve"]
      # No portMappings: the app listens on 127.0.0.1:3000, reachable only
      # from the proxy in the same task. Its metrics port is scraped by the
      # CloudWatch agent (security_groups.tf) and is not a port mapping either.
      portMappings = []
      environment = concat(local.app_environment, [
        { name = "APP_LISTEN", value = "127.0.0.1:3000" },
        { name = "APP_METRICS_LISTEN", value = "0.0.0.0:9100" },
        # The pages sign in with ClerkJS; the proxy still verifies every token.
        { name = "APP_CLERK_PUBLISHABLE_KEY", value = var.clerk_publishable_key },
      ])
      secrets = local.app_secrets
      healthCheck = {
        command     = ["CMD", "/usr/local/bin/retainwise-app", "healthcheck", "--url", "http://127.0.0.1:3000/api/health"]
        interval    = 10
        timeout     = 5
        retries     = 3
        startPeriod = 30
      }
      mountPoints = [
        { sourceVolume = "app-tmp", containerPath = "/tmp", readOnly = false },
      ]
      dockerLabels = {
        ECS_PROMETHEUS_EXPORTER_PORT = "9100"
        ECS_PROMETHEUS_METRICS_PATH  = "/metrics"
        ECS_PROMETHEUS_JOB_NAME      = "retainwise-app"
      }
      logConfiguration = {
        logDriver = "awslogs"
        options   = merge(local.log_options, { "awslogs-group" = aws_cloudwatch_log_group.service["web"].name, "awslogs-stream-prefix" = "app" })
      }
    },
  ])
}

resource "aws_ecs_service" "web" {
  name                   = "${local.name}-web"
  cluster                = aws_ecs_cluster.main.id
  task_definition        = aws_ecs_task_definition.web.arn
  desired_count          = var.web_min_tasks
  launch_type            = "FARGATE"
  platform_version       = "LATEST"
  propagate_tags         = "SERVICE"
  enable_execute_command = false

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = 60

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = aws_subnet.private[*].id
    security_groups  = [aws_security_group.web.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.proxy.arn
    container_name   = "proxy"
    container_port   = 8080
  }

  lifecycle {
    # Autoscaling owns the count after creation.
    ignore_changes = [desired_count]
  }

  depends_on = [aws_lb_listener.https]
}

# --- worker ---------------------------------------------------------------------------

resource "aws_ecs_task_definition" "worker" {
  family                   = "${local.name}-worker"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.worker_cpu
  memory                   = var.worker_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.worker_task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  volume {
    name = "worker-tmp"
  }

  container_definitions = jsonencode([
    {
      name                   = "worker"
      image                  = local.app_image
      essential              = true
      readonlyRootFilesystem = true
      user                   = "65532:65532"
      stopTimeout            = local.stop_timeout
      command                = ["worker"]
      portMappings           = []
      environment = concat(local.app_environment, [
        { name = "APP_METRICS_LISTEN", value = "0.0.0.0:9100" },
        { name = "APP_WORKER_CONCURRENCY", value = tostring(var.worker_concurrency) },
      ])
      secrets = local.app_secrets
      # The worker serves no API; its metrics listener answering is its health.
      healthCheck = {
        command     = ["CMD", "/usr/local/bin/retainwise-app", "healthcheck", "--url", "http://127.0.0.1:9100/metrics"]
        interval    = 15
        timeout     = 5
        retries     = 3
        startPeriod = 30
      }
      mountPoints = [
        { sourceVolume = "worker-tmp", containerPath = "/tmp", readOnly = false },
      ]
      dockerLabels = {
        ECS_PROMETHEUS_EXPORTER_PORT = "9100"
        ECS_PROMETHEUS_METRICS_PATH  = "/metrics"
        ECS_PROMETHEUS_JOB_NAME      = "retainwise-worker"
      }
      logConfiguration = {
        logDriver = "awslogs"
        options   = merge(local.log_options, { "awslogs-group" = aws_cloudwatch_log_group.service["worker"].name, "awslogs-stream-prefix" = "worker" })
      }
    },
  ])
}

resource "aws_ecs_service" "worker" {
  name                   = "${local.name}-worker"
  cluster                = aws_ecs_cluster.main.id
  task_definition        = aws_ecs_task_definition.worker.arn
  desired_count          = var.worker_min_tasks
  launch_type            = "FARGATE"
  platform_version       = "LATEST"
  propagate_tags         = "SERVICE"
  enable_execute_command = false

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = aws_subnet.private[*].id
    security_groups  = [aws_security_group.worker.id]
    assign_public_ip = false
  }

  lifecycle {
    ignore_changes = [desired_count]
  }
}

# --- migrate (one-off) -------------------------------------------------------------------
# Run before deploying a new app image: README, "Deploy".

resource "aws_ecs_task_definition" "migrate" {
  family                   = "${local.name}-migrate"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.migrate_task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([
    {
      name                   = "migrate"
      image                  = local.app_image
      essential              = true
      readonlyRootFilesystem = true
      user                   = "65532:65532"
      command                = ["migrate"]
      portMappings           = []
      environment = [
        { name = "DATABASE_URL", value = local.database_url },
        { name = "APP_METRICS_LISTEN", value = "off" },
      ]
      secrets = local.app_secrets
      logConfiguration = {
        logDriver = "awslogs"
        options   = merge(local.log_options, { "awslogs-group" = aws_cloudwatch_log_group.service["migrate"].name, "awslogs-stream-prefix" = "migrate" })
      }
    },
  ])
}
