# The public entry: HTTPS on 443 only, forwarded to the proxy's data port.
# The target group's health check asks the proxy's admin port for /readyz,
# which turns 503 the moment the proxy receives SIGTERM; the deregistration
# delay equals the proxy's drain time.

resource "aws_lb" "web" {
  name               = "${local.name}-web"
  load_balancer_type = "application"
  internal           = false
  subnets            = aws_subnet.public[*].id
  security_groups    = [aws_security_group.alb.id]

  drop_invalid_header_fields = true
  enable_deletion_protection = true
  # The timeout chain (README, "Connection lifetimes"):
  #   body idle < ALB idle, upstream timeout < ALB idle < proxy idle.
  # Above the proxy's upstream timeout, so the proxy answers 504 itself;
  # below the proxy's keep-alive idle time, so the ALB, not the proxy,
  # closes idle connections (a target closing first makes the ALB answer
  # 502 when it reuses the connection).
  idle_timeout = local.alb_idle_timeout_seconds

  access_logs {
    bucket  = aws_s3_bucket.logs.id
    prefix  = "alb"
    enabled = true
  }

  depends_on = [aws_s3_bucket_policy.logs]

  lifecycle {
    precondition {
      condition     = var.proxy_idle_timeout_seconds > local.alb_idle_timeout_seconds
      error_message = "proxy_idle_timeout_seconds must exceed the ALB idle timeout (proxy_upstream_timeout_seconds + 5)."
    }
    precondition {
      condition     = var.proxy_body_idle_timeout_seconds < local.alb_idle_timeout_seconds
      error_message = "proxy_body_idle_timeout_seconds must be below the ALB idle timeout, so the proxy answers 408 first."
    }
  }
}

locals {
  alb_idle_timeout_seconds = var.proxy_upstream_timeout_seconds + 5
}

resource "aws_lb_target_group" "proxy" {
  name        = "${local.name}-proxy"
  vpc_id      = aws_vpc.main.id
  target_type = "ip"
  protocol    = "HTTP"
  port        = local.proxy_port

  deregistration_delay = var.proxy_drain_seconds

  health_check {
    enabled             = true
    protocol            = "HTTP"
    port                = tostring(local.proxy_admin_port)
    path                = "/readyz"
    matcher             = "200"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.web.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.proxy.arn
  }
}

# --- WAF ------------------------------------------------------------------------------
# Known bad inputs (Log4Shell and friends), IP reputation and a per-IP rate
# limit, and the anonymous-IP list in count mode. AWS's common rule set is left out on purpose: its body-size and
# body-XSS rules block legitimate CSV uploads.

resource "aws_wafv2_web_acl" "web" {
  name  = "${local.name}-web"
  scope = "REGIONAL"

  default_action {
    allow {}
  }

  rule {
    name     = "known-bad-inputs"
    priority = 1

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "known-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "ip-reputation"
    priority = 2

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesAmazonIpReputationList"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "ip-reputation"
      sampled_requests_enabled   = true
    }
  }

  # Counted, not blocked: customers behind corporate VPNs and cloud desktops
  # match this list. Its metric shows how much traffic comes that way; switch
  # to none {} (block) if the product decides to refuse anonymising networks.
  rule {
    name     = "anonymous-ip"
    priority = 3

    override_action {
      count {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesAnonymousIpList"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "anonymous-ip"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "rate-limit-per-ip"
    priority = 4

    action {
      block {}
    }

    statement {
      rate_based_statement {
        limit              = 2000
        aggregate_key_type = "IP"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "rate-limit-per-ip"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${local.name}-web"
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_association" "web" {
  resource_arn = aws_lb.web.arn
  web_acl_arn  = aws_wafv2_web_acl.web.arn
}

resource "aws_wafv2_web_acl_logging_configuration" "web" {
  resource_arn            = aws_wafv2_web_acl.web.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]
}
