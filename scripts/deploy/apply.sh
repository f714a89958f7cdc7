#!/usr/bin/env bash
# terraform apply of everything with the given image tags (the task
# definitions stay in Terraform, so there is never drift), then waits until
# the web and worker services are stable. Also the rollback: run it with
# the previous tags.
#   scripts/deploy/apply.sh PROXY_TAG APP_TAG
# shellcheck source=scripts/deploy/lib.sh
source "$(dirname "$0")/lib.sh"
proxy_tag="${1:?usage: apply.sh PROXY_TAG APP_TAG}"
app_tag="${2:?usage: apply.sh PROXY_TAG APP_TAG}"
write_tfvars
say "terraform apply (proxy $proxy_tag, app $app_tag)"
tf apply -input=false -no-color -auto-approve -lock-timeout=5m -var-file=prod.tfvars \
    -var "proxy_image_tag=$proxy_tag" -var "app_image_tag=$app_tag"
cluster=$(tf output -raw cluster_name)
say "waiting for the web and worker services to be stable"
aws ecs wait services-stable --cluster "$cluster" \
    --services "$(tf output -raw web_service_name)" "$(tf output -raw worker_service_name)"
