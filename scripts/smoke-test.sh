#!/usr/bin/env bash
# Smoke test of a running stack, through its front door (the load
# balancer in production, the proxy on a dev stack):
#   1. GET /api/health answers 200 (public path: the app and its database
#      and storage answer behind the proxy);
#   2. GET /api/uploads without a token answers 401 with a Bearer challenge
#      (the proxy is in front and refuses the unauthenticated);
#   3. with a target group ARN: every registered target is healthy in
#      `aws elbv2 describe-target-health` (the ALB checks each proxy's
#      /readyz on the admin port, which the load balancer does not expose).
# Exits 0 when all pass, 1 with one line per failure otherwise.
#
#   scripts/smoke-test.sh BASE_URL [TARGET_GROUP_ARN]
#   scripts/smoke-test.sh http://127.0.0.1:8080
#
# SMOKE_ATTEMPTS (default 5) and SMOKE_DELAY (seconds, default 3): a fresh
# deployment may take a few seconds to answer through every load-balancer
# node, so each check is tried that often before it counts as failed.
set -euo pipefail

base="${1:?usage: smoke-test.sh BASE_URL [TARGET_GROUP_ARN]}"
base="${base%/}"
target_group="${2:-}"
attempts="${SMOKE_ATTEMPTS:-5}"
delay="${SMOKE_DELAY:-3}"
failures=0

say() { printf '==> %s\n' "$*"; }
fail() { printf 'smoke test FAILED: %s\n' "$*" >&2; failures=$((failures + 1)); }

# try CHECK_FUNCTION: runs it up to $attempts times; its last message is
# the failure reported.
try() {
    local i message
    for ((i = 1; i <= attempts; i++)); do
        if message=$("$@"); then
            say "$message"
            return 0
        fi
        [ "$i" -lt "$attempts" ] && sleep "$delay"
    done
    fail "$message"
}

status_of() {
    # Status code and headers of one GET; curl's own failure is status 000.
    curl -sS -o /dev/null -D - --max-time 10 "$1" 2>/dev/null || true
}

health() {
    local head code
    head=$(status_of "$base/api/health")
    code=$(printf '%s' "$head" | awk 'NR==1 {print $2}')
    if [ "$code" = 200 ]; then
        echo "GET $base/api/health: 200"
    else
        echo "GET $base/api/health answered ${code:-nothing}, expected 200"
        return 1
    fi
}

unauthenticated() {
    local head code
    head=$(status_of "$base/api/uploads")
    code=$(printf '%s' "$head" | awk 'NR==1 {print $2}')
    if [ "$code" != 401 ]; then
        echo "GET $base/api/uploads without a token answered ${code:-nothing}, expected 401"
        return 1
    fi
    if ! printf '%s' "$head" | tr -d '\r' | grep -qi '^www-authenticate: Bearer'; then
        echo "GET $base/api/uploads: 401 without a Bearer challenge: the proxy is not in front"
        return 1
    fi
    echo "GET $base/api/uploads without a token: 401 Bearer"
}

targets() {
    local states
    if ! states=$(aws elbv2 describe-target-health --target-group-arn "$target_group" \
        --query 'TargetHealthDescriptions[].TargetHealth.State' --output text 2>&1); then
        echo "describe-target-health failed: $states"
        return 1
    fi
    # shellcheck disable=SC2086 # one word per target
    set -- $states
    if [ "$#" -eq 0 ]; then
        echo "no target is registered in $target_group"
        return 1
    fi
    local state
    for state in "$@"; do
        if [ "$state" != healthy ]; then
            echo "targets of $target_group: $* (every one must be healthy)"
            return 1
        fi
    done
    echo "all $# targets healthy"
}

try health
try unauthenticated
if [ -n "$target_group" ]; then
    command -v aws >/dev/null 2>&1 || { fail "a target group was given but the aws CLI is missing"; exit 1; }
    try targets
fi

if [ "$failures" -ne 0 ]; then
    exit 1
fi
say "smoke test passed"
