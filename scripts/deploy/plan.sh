#!/usr/bin/env bash
# terraform plan with the production variables and the image tags running
# now (a pull request changes infrastructure, not images); the plan's text
# goes to OUT for the pull-request comment. Exits non-zero when the plan fails.
#   scripts/deploy/plan.sh plan.txt
# shellcheck source=scripts/deploy/lib.sh
source "$(dirname "$0")/lib.sh"
out="${1:?usage: plan.sh OUT}"
write_tfvars
read -r proxy_tag app_tag < <(bash scripts/deploy/running-tags.sh --plain)
say "terraform plan (proxy $proxy_tag, app $app_tag)"
set +e
tf plan -input=false -no-color -lock-timeout=5m -var-file=prod.tfvars \
    -var "proxy_image_tag=$proxy_tag" -var "app_image_tag=$app_tag" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e
exit "$status"
