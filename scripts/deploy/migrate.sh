#!/usr/bin/env bash
# Runs the migrations with the new app image, before anything else
# changes: registers the migrate task definition with APP_TAG through
# Terraform (run-task cannot override an image, and a task definition made
# outside Terraform would drift), runs it once, waits for it to stop, and
# fails unless its container exited 0.
#   scripts/deploy/migrate.sh "$GITHUB_SHA"
# shellcheck source=scripts/deploy/lib.sh
source "$(dirname "$0")/lib.sh"
app_tag="${1:?usage: migrate.sh APP_TAG}"
write_tfvars
read -r proxy_tag _ < <(bash scripts/deploy/running-tags.sh --plain 2>/dev/null || echo "$app_tag $app_tag")
say "registering the migrate task definition for app $app_tag"
tf apply -input=false -no-color -auto-approve -lock-timeout=5m -var-file=prod.tfvars \
    -var "proxy_image_tag=$proxy_tag" -var "app_image_tag=$app_tag" \
    -target=aws_ecs_task_definition.migrate
cluster=$(tf output -raw cluster_name)
family=$(tf output -raw migrate_task_definition)
subnets=$(tf output -json private_subnet_ids | jq -r 'join(",")')
group=$(tf output -raw worker_security_group_id)
say "running $family on $cluster"
task=$(aws ecs run-task --cluster "$cluster" --task-definition "$family" --launch-type FARGATE \
    --started-by "deploy-$app_tag" \
    --network-configuration "awsvpcConfiguration={subnets=[$subnets],securityGroups=[$group],assignPublicIp=DISABLED}" \
    --query 'tasks[0].taskArn' --output text)
[ -n "$task" ] && [ "$task" != None ] || die "the migrate task did not start"
say "waiting for $task"
aws ecs wait tasks-stopped --cluster "$cluster" --tasks "$task"
read -r code reason < <(aws ecs describe-tasks --cluster "$cluster" --tasks "$task" \
    --query 'tasks[0].[containers[0].exitCode, stoppedReason]' --output text)
if [ "$code" != 0 ]; then
    die "migrations failed: exit code $code ($reason); logs: /retainwise/prod/migrate, stream of task ${task##*/}"
fi
say "migrations done"
