# Every input of the deployment. Secrets are not among them: the database
# password is created and rotated by RDS in Secrets Manager
# (manage_master_user_password), and Clerk's keys are public (a JWKS URL).

variable "project" {
  description = "Name prefix of every resource."
  type        = string
  default     = "retainwise"
}

variable "environment" {
  description = "Environment name (prod, staging): part of every resource name."
  type        = string
  default     = "prod"
}

variable "aws_region" {
  description = "Region to deploy into."
  type        = string
  default     = "eu-west-1"
}

# --- network -----------------------------------------------------------------

variable "vpc_cidr" {
  description = "CIDR of the VPC; split into public and private /20s."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zone_suffixes" {
  description = "Zones the VPC may use, by letter; the first az_count available ones are used."
  type        = list(string)
  default     = ["a", "b", "c"]
}

variable "az_count" {
  description = "Availability zones used (2 or 3). RDS Multi-AZ needs at least 2."
  type        = number
  default     = 2

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 3
    error_message = "az_count must be 2 or 3."
  }
}

variable "nat_gateway_per_az" {
  description = "One NAT gateway per AZ (survives an AZ outage) instead of one shared. The proxy needs egress to Clerk's JWKS URL."
  type        = bool
  default     = true
}

variable "allowed_ingress_cidrs" {
  description = "Who may reach the load balancer on 443."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "certificate_arn" {
  description = "ACM certificate for the load balancer's HTTPS listener."
  type        = string
}

# --- images ------------------------------------------------------------------

variable "proxy_image_tag" {
  description = "Tag of the proxy image in its ECR repository (tags are immutable: use the git commit)."
  type        = string
}

variable "app_image_tag" {
  description = "Tag of the app image in its ECR repository (the web app, the worker and migrations run it)."
  type        = string
}

# --- proxy (DESIGN.md section 2) -----------------------------------------------

variable "clerk_jwks_url" {
  description = "Clerk's JWKS URL (https), e.g. https://clerk.example.com/.well-known/jwks.json."
  type        = string

  validation {
    condition     = startswith(var.clerk_jwks_url, "https://")
    error_message = "clerk_jwks_url must be an https URL."
  }
}

variable "clerk_issuer_url" {
  description = "Expected iss claim, exactly as Clerk writes it."
  type        = string
}

variable "clerk_authorized_parties" {
  description = "Accepted azp values (the app's origins). Clerk calls this check essential against CSRF, so it is required here."
  type        = list(string)

  validation {
    condition     = length(var.clerk_authorized_parties) > 0
    error_message = "Set at least one authorized party (the app's origin)."
  }
}

variable "clerk_publishable_key" {
  description = "Clerk publishable key (pk_live_... or pk_test_..., the dashboard's API keys page); not a secret. The app's pages load ClerkJS from the Frontend API it names and allow exactly that origin in their Content-Security-Policy."
  type        = string

  validation {
    condition     = can(regex("^pk_(live|test)_[A-Za-z0-9+/=]+$", var.clerk_publishable_key))
    error_message = "clerk_publishable_key must be a Clerk publishable key (pk_live_... or pk_test_...)."
  }
}

variable "clerk_audience" {
  description = "Accepted aud values; empty leaves aud unchecked (Clerk session tokens carry none by default)."
  type        = list(string)
  default     = []
}

variable "jwks_cache_ttl_seconds" {
  description = "JWKS refresh interval (JWKS_CACHE_TTL)."
  type        = number
  default     = 3600
}

variable "jwks_cache_max_age_seconds" {
  description = "How long stale keys may be used after fetches fail (JWKS_CACHE_MAX_AGE)."
  type        = number
  default     = 86400
}

variable "proxy_public_paths" {
  description = "Paths served without a token (PROXY_PUBLIC_PATHS): the health check and the web app's shell and assets, which carry no user data (every piece of it comes from the API with the session cookie)."
  type        = list(string)
  default     = ["/api/health", "/", "/assets/", "/predictions/"]
}

variable "proxy_drain_seconds" {
  description = "Proxy drain on SIGTERM (PROXY_DRAIN_TIMEOUT); also the target group's deregistration delay. The containers' stopTimeout is 10 s above it."
  type        = number
  default     = 20

  validation {
    condition     = var.proxy_drain_seconds >= 5 && var.proxy_drain_seconds <= 100
    error_message = "proxy_drain_seconds must leave room under Fargate's 120 s stopTimeout ceiling."
  }
}

variable "proxy_upstream_timeout_seconds" {
  description = "Proxy upstream timeout (PROXY_UPSTREAM_TIMEOUT), counted from the end of the request body; the ALB idle timeout is 5 s above it."
  type        = number
  default     = 60
}

variable "proxy_idle_timeout_seconds" {
  description = "Proxy keep-alive idle time between requests (PROXY_IDLE_TIMEOUT); must exceed the ALB idle timeout (upstream timeout + 5 s) so the ALB closes idle connections first."
  type        = number
  default     = 75
}

variable "proxy_header_read_timeout_seconds" {
  description = "Time a client gets to send a request head (PROXY_HEADER_READ_TIMEOUT), from accept or from the head's first byte."
  type        = number
  default     = 10
}

variable "proxy_body_idle_timeout_seconds" {
  description = "A request body (or a response read) making no progress this long is cut (PROXY_BODY_IDLE_TIMEOUT, 408); must be below the ALB idle timeout."
  type        = number
  default     = 30
}

variable "proxy_cors_allowed_origins" {
  description = "Exact origins allowed to call the API from a browser on another origin (PROXY_CORS_ALLOWED_ORIGINS); empty: no CORS headers."
  type        = list(string)
  default     = []
}

# --- services ----------------------------------------------------------------

variable "web_cpu" {
  description = "Task CPU units of the web task (proxy + app)."
  type        = number
  default     = 1024
}

variable "web_memory" {
  description = "Task memory (MiB) of the web task."
  type        = number
  default     = 2048
}

variable "web_min_tasks" {
  description = "Fewest web tasks; 2 or more keeps one per AZ."
  type        = number
  default     = 2
}

variable "web_max_tasks" {
  description = "Most web tasks."
  type        = number
  default     = 10
}

variable "worker_cpu" {
  description = "Task CPU units of a worker task (scoring is CPU-bound)."
  type        = number
  default     = 2048
}

variable "worker_memory" {
  description = "Task memory (MiB) of a worker task."
  type        = number
  default     = 4096
}

variable "worker_min_tasks" {
  description = "Fewest worker tasks."
  type        = number
  default     = 1
}

variable "worker_max_tasks" {
  description = "Most worker tasks."
  type        = number
  default     = 20
}

variable "worker_concurrency" {
  description = "Jobs a worker task runs at once (APP_WORKER_CONCURRENCY)."
  type        = number
  default     = 2
}

variable "worker_backlog_per_task" {
  description = "Target of the worker's scaling: visible messages per running worker task."
  type        = number
  default     = 10
}

# --- queue ---------------------------------------------------------------------

variable "longest_job_seconds" {
  description = "Longest a scoring job may take (a 1,000,000-row CSV with margin). The queue's visibility timeout is above it."
  type        = number
  default     = 900
}

variable "job_max_receives" {
  description = "Receives before SQS moves a message to the dead-letter queue; the worker's APP_JOB_MAX_ATTEMPTS is the same number."
  type        = number
  default     = 5
}

variable "oldest_message_alarm_seconds" {
  description = "Alarm when the oldest queued job has waited longer than this (the Prometheus rule QueueOldestJobTooOld says 10 minutes too)."
  type        = number
  default     = 600
}

# --- storage and database ----------------------------------------------------------

variable "storage_prefix" {
  description = "Key prefix of the app's objects in the data bucket (STORAGE_URL=s3://bucket/prefix)."
  type        = string
  default     = "app"
}

variable "upload_retention_days" {
  description = "Days before uploaded and scored CSVs are expired (customer data is not kept forever)."
  type        = number
  default     = 90
}

variable "noncurrent_version_retention_days" {
  description = "Days a deleted or overwritten object version is kept (undo window)."
  type        = number
  default     = 30
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_engine_version" {
  description = "PostgreSQL major version (minor upgrades are automatic)."
  type        = string
  default     = "16"
}

variable "db_allocated_storage_gb" {
  description = "Initial storage; grows up to db_max_allocated_storage_gb."
  type        = number
  default     = 50
}

variable "db_max_allocated_storage_gb" {
  description = "Storage autoscaling ceiling."
  type        = number
  default     = 500
}

variable "db_multi_az" {
  description = "Standby in a second AZ."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Automated backups (point-in-time restore window)."
  type        = number
  default     = 14
}

variable "db_name" {
  description = "Database name."
  type        = string
  default     = "retainwise"
}

variable "db_username" {
  description = "Master user name; its password is generated and rotated by RDS in Secrets Manager."
  type        = string
  default     = "retainwise"
}

# --- observability -------------------------------------------------------------

variable "log_retention_days" {
  description = "CloudWatch Logs retention."
  type        = number
  default     = 365
}

variable "alarm_email" {
  description = "Address subscribed to the alarm topic; empty subscribes nobody (add your pager there)."
  type        = string
  default     = ""
}

variable "cloudwatch_agent_image" {
  description = "CloudWatch agent image that scrapes the Prometheus endpoints (pin a version)."
  type        = string
  default     = "public.ecr.aws/cloudwatch-agent/cloudwatch-agent:1.300062.0b1304"
}

# --- CI (ci.tf) ---------------------------------------------------------------------

variable "github_repository" {
  description = "The GitHub repository whose workflows may assume the CI roles, as OWNER/NAME."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository is OWNER/NAME, without a URL or a wildcard."
  }
}

variable "state_bucket" {
  description = "The S3 bucket holding the Terraform state (backend.hcl's bucket)."
  type        = string
}

variable "state_key" {
  description = "The state object's key in state_bucket (backend.hcl's key)."
  type        = string
  default     = "retainwise/prod/terraform.tfstate"
}

variable "state_lock_table" {
  description = "The DynamoDB table that locks the state (backend.hcl's dynamodb_table)."
  type        = string
  default     = "retainwise-terraform-locks"
}
