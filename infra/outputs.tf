output "load_balancer_dns_name" {
  description = "Point the app's DNS name (CNAME or alias) here."
  value       = aws_lb.web.dns_name
}

output "ecr_repository_urls" {
  description = "Where to push the proxy and app images."
  value       = { for name, repo in aws_ecr_repository.image : name => repo.repository_url }
}

output "cluster_name" {
  value = aws_ecs_cluster.main.name
}

output "web_service_name" {
  value = aws_ecs_service.web.name
}

output "worker_service_name" {
  value = aws_ecs_service.worker.name
}

output "migrate_task_definition" {
  description = "Run before each app deploy (README: Deploy)."
  value       = aws_ecs_task_definition.migrate.family
}

output "private_subnet_ids" {
  value = aws_subnet.private[*].id
}

output "worker_security_group_id" {
  description = "Used by the migrate task (same database access as the worker)."
  value       = aws_security_group.worker.id
}

output "data_bucket" {
  value = aws_s3_bucket.data.id
}

output "jobs_queue_url" {
  value = aws_sqs_queue.jobs.url
}

output "jobs_dlq_url" {
  value = aws_sqs_queue.jobs_dlq.url
}

output "database_secret_arn" {
  description = "Secrets Manager secret holding the database password (rotated by RDS)."
  value       = local.db_secret_arn
}

output "alarm_topic_arn" {
  value = aws_sns_topic.alarms.arn
}

output "proxy_image_tag" {
  description = "The proxy image tag deployed: the rollback target of the next deploy."
  value       = var.proxy_image_tag
}

output "app_image_tag" {
  description = "The app image tag deployed: the rollback target of the next deploy."
  value       = var.app_image_tag
}

output "web_target_group_arn" {
  description = "The smoke test checks every target of this group is healthy."
  value       = aws_lb_target_group.proxy.arn
}

output "ci_plan_role_arn" {
  description = "AWS_PLAN_ROLE_ARN of the deploy workflow (pull requests)."
  value       = aws_iam_role.ci_plan.arn
}

output "ci_deploy_role_arn" {
  description = "AWS_DEPLOY_ROLE_ARN of the deploy workflow (environment production)."
  value       = aws_iam_role.ci_deploy.arn
}
