# Who may talk to whom. The app's port 3000 appears nowhere: the app listens
# on 127.0.0.1 inside the web task, and only the proxy beside it reaches it.
#
#   internet ─443─▶ alb ─8080, 9090─▶ web task (proxy)
#   cwagent ─9090, 9100─▶ web task      cwagent ─9100─▶ worker task
#   web, worker ─5432─▶ rds             tasks ─443─▶ endpoints, NAT

locals {
  proxy_port       = 8080
  proxy_admin_port = 9090
  app_port         = 3000
  app_metrics_port = 9100
  postgres_port    = 5432
}

# --- load balancer -----------------------------------------------------------------

resource "aws_security_group" "alb" {
  name        = "${local.name}-alb"
  description = "Load balancer: HTTPS in, proxy data and admin ports out"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-alb" }
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  for_each = toset(var.allowed_ingress_cidrs)

  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from clients"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "alb_to_proxy" {
  security_group_id            = aws_security_group.alb.id
  description                  = "Proxy data port"
  ip_protocol                  = "tcp"
  from_port                    = local.proxy_port
  to_port                      = local.proxy_port
  referenced_security_group_id = aws_security_group.web.id
}

resource "aws_vpc_security_group_egress_rule" "alb_to_proxy_admin" {
  security_group_id            = aws_security_group.alb.id
  description                  = "Proxy admin port (/readyz health check)"
  ip_protocol                  = "tcp"
  from_port                    = local.proxy_admin_port
  to_port                      = local.proxy_admin_port
  referenced_security_group_id = aws_security_group.web.id
}

# --- web tasks (proxy + app) ---------------------------------------------------------

resource "aws_security_group" "web" {
  name        = "${local.name}-web"
  description = "Web tasks: proxy ports from the load balancer and the metrics scraper only"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-web" }
}

resource "aws_vpc_security_group_ingress_rule" "web_from_alb" {
  security_group_id            = aws_security_group.web.id
  description                  = "Proxy data port from the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = local.proxy_port
  to_port                      = local.proxy_port
  referenced_security_group_id = aws_security_group.alb.id
}

resource "aws_vpc_security_group_ingress_rule" "web_admin_from_alb" {
  security_group_id            = aws_security_group.web.id
  description                  = "Proxy admin port (/readyz) from the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = local.proxy_admin_port
  to_port                      = local.proxy_admin_port
  referenced_security_group_id = aws_security_group.alb.id
}

resource "aws_vpc_security_group_ingress_rule" "web_admin_from_scraper" {
  security_group_id            = aws_security_group.web.id
  description                  = "Proxy /metrics from the CloudWatch agent"
  ip_protocol                  = "tcp"
  from_port                    = local.proxy_admin_port
  to_port                      = local.proxy_admin_port
  referenced_security_group_id = aws_security_group.scraper.id
}

resource "aws_vpc_security_group_ingress_rule" "web_app_metrics_from_scraper" {
  security_group_id            = aws_security_group.web.id
  description                  = "App /metrics from the CloudWatch agent"
  ip_protocol                  = "tcp"
  from_port                    = local.app_metrics_port
  to_port                      = local.app_metrics_port
  referenced_security_group_id = aws_security_group.scraper.id
}

# --- worker tasks ----------------------------------------------------------------------

resource "aws_security_group" "worker" {
  name        = "${local.name}-worker"
  description = "Worker tasks: no inbound traffic but the metrics scrape"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-worker" }
}

resource "aws_vpc_security_group_ingress_rule" "worker_metrics_from_scraper" {
  security_group_id            = aws_security_group.worker.id
  description                  = "Worker /metrics from the CloudWatch agent"
  ip_protocol                  = "tcp"
  from_port                    = local.app_metrics_port
  to_port                      = local.app_metrics_port
  referenced_security_group_id = aws_security_group.scraper.id
}

# --- metrics scraper (CloudWatch agent) ---------------------------------------------------

resource "aws_security_group" "scraper" {
  name        = "${local.name}-scraper"
  description = "CloudWatch agent: scrapes the tasks' metrics ports"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-scraper" }
}

resource "aws_vpc_security_group_egress_rule" "scraper_to_proxy_admin" {
  security_group_id            = aws_security_group.scraper.id
  description                  = "Scrape the proxy admin port"
  ip_protocol                  = "tcp"
  from_port                    = local.proxy_admin_port
  to_port                      = local.proxy_admin_port
  referenced_security_group_id = aws_security_group.web.id
}

resource "aws_vpc_security_group_egress_rule" "scraper_to_app_metrics" {
  security_group_id            = aws_security_group.scraper.id
  description                  = "Scrape the app metrics port"
  ip_protocol                  = "tcp"
  from_port                    = local.app_metrics_port
  to_port                      = local.app_metrics_port
  referenced_security_group_id = aws_security_group.web.id
}

resource "aws_vpc_security_group_egress_rule" "scraper_to_worker" {
  security_group_id            = aws_security_group.scraper.id
  description                  = "Scrape worker metrics"
  ip_protocol                  = "tcp"
  from_port                    = local.app_metrics_port
  to_port                      = local.app_metrics_port
  referenced_security_group_id = aws_security_group.worker.id
}

# --- egress shared by every task: HTTPS (AWS APIs, ECR, Clerk) and Postgres -------------

locals {
  task_security_groups = {
    web     = aws_security_group.web.id
    worker  = aws_security_group.worker.id
    scraper = aws_security_group.scraper.id
  }
  database_clients = {
    web    = aws_security_group.web.id
    worker = aws_security_group.worker.id
  }
}

resource "aws_vpc_security_group_egress_rule" "tasks_https" {
  for_each = local.task_security_groups

  security_group_id = each.value
  description       = "HTTPS to AWS APIs, ECR and Clerk's JWKS URL"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "tasks_to_database" {
  for_each = local.database_clients

  security_group_id            = each.value
  description                  = "Postgres"
  ip_protocol                  = "tcp"
  from_port                    = local.postgres_port
  to_port                      = local.postgres_port
  referenced_security_group_id = aws_security_group.database.id
}

# --- database ----------------------------------------------------------------------------

resource "aws_security_group" "database" {
  name        = "${local.name}-database"
  description = "RDS Postgres: 5432 from the web and worker tasks only"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-database" }
}

resource "aws_vpc_security_group_ingress_rule" "database_from_tasks" {
  for_each = local.database_clients

  security_group_id            = aws_security_group.database.id
  description                  = "Postgres from ${each.key} tasks"
  ip_protocol                  = "tcp"
  from_port                    = local.postgres_port
  to_port                      = local.postgres_port
  referenced_security_group_id = each.value
}

# --- interface endpoints ---------------------------------------------------------------------

resource "aws_security_group" "endpoints" {
  name        = "${local.name}-endpoints"
  description = "VPC interface endpoints: HTTPS from inside the VPC"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-endpoints" }
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_https" {
  security_group_id = aws_security_group.endpoints.id
  description       = "HTTPS from the VPC"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = var.vpc_cidr
}
