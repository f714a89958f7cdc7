#!/usr/bin/env bash
# The image tags production runs now, read from the Terraform state:
# `proxy_tag=…` and `app_tag=…` lines (for $GITHUB_OUTPUT), or with --plain
# one line "PROXY_TAG APP_TAG". Empty before the first deploy.
# shellcheck source=scripts/deploy/lib.sh
source "$(dirname "$0")/lib.sh"
proxy=$(tf output -raw proxy_image_tag 2>/dev/null || true)
app=$(tf output -raw app_image_tag 2>/dev/null || true)
if [ "${1:-}" = "--plain" ]; then
    [ -n "$proxy" ] && [ -n "$app" ] || die "no image tags in the state yet: deploy once from main first"
    echo "$proxy $app"
else
    echo "proxy_tag=$proxy"
    echo "app_tag=$app"
fi
