#!/usr/bin/env bash
# Runs the whole RetainWise stack on this machine with the embedded
# defaults: SQLite (data/retainwise.db), local files (data/objects), the
# table queue. Builds, makes a dev signing key and JWKS on first run
# (.dev/keys/, git-ignored), starts the app with its worker on
# 127.0.0.1:3000, the proxy on 127.0.0.1:8080 in front of it, verifying
# tokens against the dev JWKS exactly as in production (the proxy has no
# unverified mode), and the local sign-in page on 127.0.0.1:8081; waits
# until the app and the proxy are ready, prints the URL to open, a token
# and curl lines, and stops all three cleanly on Ctrl-C.
#
#   scripts/dev-stack.sh [--release]
#
# More tokens: target/debug/retainwise-dev token --sub USER [--ttl SECONDS]
# Logs: .dev/stack/app.log, .dev/stack/proxy.log, .dev/stack/sign-in.log.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=debug
cargo_flags=()
case "${1:-}" in
    --release) profile=release; cargo_flags=(--release) ;;
    "") ;;
    *) echo "usage: scripts/dev-stack.sh [--release]" >&2; exit 2 ;;
esac

ISSUER="https://clerk.retainwise.localhost"   # retainwise-dev token's default iss
AZP="http://localhost:8080"                   # the azp the printed tokens carry
APP="127.0.0.1:3000"
PROXY="127.0.0.1:8080"
ADMIN="127.0.0.1:9090"
APP_METRICS="127.0.0.1:9100"
SIGN_IN="127.0.0.1:8081"                     # retainwise-dev sign-in (local only)
WEB="http://$PROXY"                           # the origin a browser opens

say() { printf '==> %s\n' "$*" >&2; }

say "building (cargo build ${cargo_flags[*]:-})"
cargo build "${cargo_flags[@]}" --bins -p retainwise-proxy -p retainwise-app -p retainwise-dev
bin="${CARGO_TARGET_DIR:-target}/$profile"

"$bin/retainwise-dev" keygen # no-op when .dev/keys/ already holds a key

logs=".dev/stack"
mkdir -p "$logs" data
app_pid=""
proxy_pid=""
sign_in_pid=""
# shellcheck disable=SC2329 # invoked by the EXIT trap below
stop() {
    trap - INT TERM EXIT
    say "stopping"
    # SIGTERM: the proxy drains in-flight requests, the app lets running jobs finish.
    for pid in $proxy_pid $sign_in_pid $app_pid; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in $proxy_pid $sign_in_pid $app_pid; do wait "$pid" 2>/dev/null || true; done
    say "stopped"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Ctrl-C reaches only this script, which then stops the three processes
# with SIGTERM in order (proxy first); setsid keeps the terminal's SIGINT away
# from them where it exists.
detach() { if command -v setsid >/dev/null 2>&1; then exec setsid "$@"; else exec "$@"; fi; }

APP_LISTEN="$APP" APP_METRICS_LISTEN="$APP_METRICS" APP_SIGN_IN_URL="http://$SIGN_IN/sign-in" \
    detach "$bin/retainwise-app" serve --with-worker >"$logs/app.log" 2>&1 &
app_pid=$!

CLERK_ISSUER_URL="$ISSUER" \
CLERK_AUTHORIZED_PARTIES="$AZP,$WEB" \
PROXY_PUBLIC_PATHS="/api/health,/,/assets/,/predictions/" \
PROXY_JWKS_FILE=.dev/keys/jwks.json \
PROXY_UPSTREAM="http://$APP" \
PROXY_LISTEN="$PROXY" \
PROXY_ADMIN_LISTEN="$ADMIN" \
    detach "$bin/retainwise-proxy" >"$logs/proxy.log" 2>&1 &
proxy_pid=$!

# The browser sign-in: mints an 8-hour dev token as the __session cookie
# (cookies are per host, so the proxy on :8080 receives it).
detach "$bin/retainwise-dev" sign-in --listen "$SIGN_IN" --allowed-origin "$WEB" \
    >"$logs/sign-in.log" 2>&1 &
sign_in_pid=$!

# Ready: the app's health (database and storage answer), then the proxy's
# /readyz (keys loaded, app reachable). Both checks use the binaries' own
# healthcheck commands, so curl is not needed for this part.
wait_ready() { # name, pid, log, command...
    local name=$1 pid=$2 log=$3
    shift 3
    for _ in $(seq 1 120); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$name exited during startup; the end of $log:" >&2
            tail -n 20 "$log" >&2
            exit 1
        fi
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    echo "$name was not ready within 60 s; see $log" >&2
    exit 1
}
wait_ready app "$app_pid" "$logs/app.log" \
    "$bin/retainwise-app" healthcheck --url "http://$APP/api/health"
wait_ready proxy "$proxy_pid" "$logs/proxy.log" \
    "$bin/retainwise-proxy" healthcheck --url "http://$ADMIN/readyz"

token="$("$bin/retainwise-dev" token --sub user_dev --ttl 3600 --azp "$AZP")"
cat <<TEXT

Open $WEB/ in a browser

RetainWise is running:
  proxy  http://$PROXY   (admin: http://$ADMIN/readyz, /metrics)
  app    http://$APP     (metrics: http://$APP_METRICS/metrics; reachable only through the proxy)
  sign-in http://$SIGN_IN/sign-in (local, 8-hour sessions)
  logs   $logs/app.log, $logs/proxy.log, $logs/sign-in.log

A token for user_dev, valid for an hour (more: $bin/retainwise-dev token --sub USER --ttl SECONDS --azp $AZP):

export TOKEN=$token

curl -sS http://$PROXY/api/health
curl -sS -X POST -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: text/csv' \\
     --data-binary @tests/fixtures/sample-customers.csv 'http://$PROXY/api/uploads?filename=sample-customers.csv'
curl -sS -H "Authorization: Bearer \$TOKEN" http://$PROXY/api/uploads
curl -sS -H "Authorization: Bearer \$TOKEN" http://$PROXY/api/predictions/PREDICTION_ID
curl -sS -OJ -H "Authorization: Bearer \$TOKEN" http://$PROXY/api/predictions/PREDICTION_ID/download

Ctrl-C stops all three.
TEXT

# Runs until Ctrl-C, or until one of the three exits (then the others are stopped).
set +e
wait -n "$app_pid" "$proxy_pid" "$sign_in_pid"
status=$?
say "$( [ "$status" = 0 ] && echo "a process exited" || echo "a process failed (status $status)" ); see $logs/"
exit "$status"
