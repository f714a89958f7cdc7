#!/usr/bin/env bash
# Load benchmark of retainwise-proxy against two baselines, measured in the
# same run and interleaved over several rounds (this machine is noisy):
#   direct  - wrk straight to a minimal upstream (nginx returning 200)
#   nginx   - nginx as a plain reverse proxy, upstream keep-alive, no auth:
#             the ceiling for any proxy on this machine
#   ours    - retainwise-proxy with a valid RS256 token on every request
# wrk runs on core 0; the proxy under test and the upstream share core 1.
# Prints req/s at 50 connections, p50/p99 at 1 connection, the proxy's peak
# RSS, and ratios. Usage: scripts/bench-proxy.sh [ROUNDS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-3}
seconds=${2:-10}
need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk || ! need nginx; then
    [ "$(id -u)" = 0 ] || { echo "install wrk and nginx (apt-get install wrk nginx-light)" >&2; exit 1; }
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light >/dev/null
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

cargo build --release -q -p retainwise-proxy -p retainwise-dev
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
up_port=$(free_port); nginx_port=$(free_port); ours_port=$(free_port); admin_port=$(free_port)

nginx_conf() { # $1 name, $2 server block
    mkdir -p "$work/$1"
    cat >"$work/$1/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $work/$1/nginx.pid;
error_log $work/$1/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    $2
}
EOF
}
nginx_conf upstream "server { listen 127.0.0.1:$up_port; location / { return 200 'ok\n'; } }"
nginx_conf proxy "upstream app { server 127.0.0.1:$up_port; keepalive 64; }
    server { listen 127.0.0.1:$nginx_port; location / {
        proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"

taskset -c 1 "$nginx_bin" -p "$work/upstream" -c "$work/upstream/nginx.conf" & pids+=($!)
taskset -c 1 "$nginx_bin" -p "$work/proxy" -c "$work/proxy/nginx.conf" & pids+=($!)

"${CARGO_TARGET_DIR:-target}"/release/retainwise-dev --dir "$work/keys" keygen 2>/dev/null
token=$("${CARGO_TARGET_DIR:-target}"/release/retainwise-dev --dir "$work/keys" token --sub user_bench --ttl 7200 \
    --issuer https://clerk.bench.example --azp https://app.bench.example)
: >"$work/empty.toml"
CLERK_ISSUER_URL=https://clerk.bench.example CLERK_AUTHORIZED_PARTIES=https://app.bench.example \
PROXY_JWKS_FILE="$work/keys/jwks.json" PROXY_LISTEN=127.0.0.1:$ours_port \
PROXY_ADMIN_LISTEN=127.0.0.1:$admin_port PROXY_UPSTREAM=http://127.0.0.1:$up_port PROXY_LOG=warn \
    taskset -c 1 "${CARGO_TARGET_DIR:-target}"/release/retainwise-proxy --config "$work/empty.toml" >"$work/proxy.log" 2>&1 &
ours_pid=$!; pids+=("$ours_pid")

for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:$admin_port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
for url in "http://127.0.0.1:$up_port/" "http://127.0.0.1:$nginx_port/"; do
    curl -sf "$url" >/dev/null || { echo "baseline at $url is not answering" >&2; exit 1; }
done
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "http://127.0.0.1:$ours_port/api/uploads")
[ "$code" = 200 ] || { echo "proxy answered $code to a valid token" >&2; cat "$work/proxy.log" >&2; exit 1; }

url_of() { case $1 in direct) echo "http://127.0.0.1:$up_port/api/uploads";;
    nginx) echo "http://127.0.0.1:$nginx_port/api/uploads";; ours) echo "http://127.0.0.1:$ours_port/api/uploads";; esac; }

# wrk prints latency in us/ms/s; normalise to microseconds.
to_us() { awk '{v=$1; if (v ~ /us$/) {sub(/us/,"",v); print v} else if (v ~ /ms$/) {sub(/ms/,"",v); print v*1000} else {sub(/s/,"",v); print v*1000000}}'; }

declare -A rps p50 p99
for round in $(seq "$rounds"); do
    for target in direct nginx ours; do
        url=$(url_of $target)
        out=$(taskset -c 0 wrk -t1 -c50 -d"${seconds}s" -H "Authorization: Bearer $token" "$url")
        r=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
        lat=$(taskset -c 0 wrk -t1 -c1 -d"${seconds}s" --latency -H "Authorization: Bearer $token" "$url")
        l50=$(awk '$1=="50%" {print $2}' <<<"$lat" | to_us)
        l99=$(awk '$1=="99%" {print $2}' <<<"$lat" | to_us)
        rps[$target]+="$r "; p50[$target]+="$l50 "; p99[$target]+="$l99 "
        printf 'round %d %-6s %10.0f req/s  p50 %7.1f us  p99 %7.1f us\n' "$round" "$target" "$r" "$l50" "$l99"
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$ours_pid/status")
echo
echo "medians over $rounds rounds of ${seconds}s (wrk on core 0; server side on core 1):"
for target in direct nginx ours; do
    printf '  %-6s %10.0f req/s @50   p50 %7.1f us   p99 %7.1f us @1\n' "$target" \
        "$(median <<<"${rps[$target]}")" "$(median <<<"${p50[$target]}")" "$(median <<<"${p99[$target]}")"
done
r_d=$(median <<<"${rps[direct]}"); r_n=$(median <<<"${rps[nginx]}"); r_o=$(median <<<"${rps[ours]}")
l_d=$(median <<<"${p50[direct]}"); l_n=$(median <<<"${p50[nginx]}"); l_o=$(median <<<"${p50[ours]}")
awk -v d="$r_d" -v n="$r_n" -v o="$r_o" -v ld="$l_d" -v ln="$l_n" -v lo="$l_o" -v rss="$rss_kib" 'BEGIN {
    printf "ratios: ours/nginx req/s %.2f (target >= 0.90); ours/direct %.2f; nginx/direct %.2f\n", o/n, o/d, n/d
    printf "added p50 at 1 connection: ours %.1f us, nginx %.1f us, ratio %.2f (target <= 2.0)\n", lo-ld, ln-ld, (ln-ld > 0) ? (lo-ld)/(ln-ld) : 0
    printf "proxy peak RSS: %.1f MiB (target < 30)\n", rss/1024
}'
