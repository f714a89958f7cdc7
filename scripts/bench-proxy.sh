#!/usr/bin/env bash
# Load benchmark of retainwise-proxy against its peers, measured in the same
# run and interleaved over several rounds (this machine is noisy):
#   direct     - wrk straight to a minimal upstream (nginx returning 200)
#   nginx      - nginx as a keep-alive reverse proxy, no auth: the ceiling
#   haproxy    - HAProxy, one thread, jwt_verify on every request, with alg,
#                iss and exp checked in ACLs; fed the rotating tokens
#   ours       - retainwise-proxy, one valid token (token cache hit), access
#                log off (as nginx runs here)
#   ours-log   - the same with the access log on (written to a file)
#   ours-cold  - PROXY_TOKEN_CACHE_SIZE=1 and N rotating tokens: every
#                request is an RSA verification
#   ours-half  - one token, in a cgroup limited to half a core
#   floor      - proxy/examples/floor.rs: the least an HTTP/1.1 forwarder on
#                tokio costs, with the proxy's verifier and header steps on
#                an http::HeaderMap but no hyper (not a proxy: body-less
#                requests, Content-Length responses only); one token
#   floor-raw  - the same with the heads rewritten as bytes, no HeaderMap
#   floor-cold - floor with a token cache of 1 and the rotating tokens
# Each round starts one peer later than the last. Servers are pinned to
# core 1, wrk to core 0. Then the memory figure:
# RSS of nginx and of the proxy holding 10,000 idle keep-alive connections
# that have each served one request, and after they close.
# Usage: [BASELINE=older-retainwise-proxy] scripts/bench-proxy.sh [ROUNDS] [SECONDS] [TOKENS]
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-3}
seconds=${2:-10}
ntokens=${3:-1000}
idle_conns=10000
need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk || ! need nginx || ! need haproxy || ! need openssl; then
    [ "$(id -u)" = 0 ] || { echo "install wrk, nginx-light, haproxy and openssl" >&2; exit 1; }
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light haproxy openssl >/dev/null
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
ulimit -n "$(ulimit -Hn)"

cargo build --release -q -p retainwise-proxy -p retainwise-dev
cargo build --release -q -p retainwise-proxy --example floor
bin="${CARGO_TARGET_DIR:-target}/release"
work=$(mktemp -d)
pids=()
cgroup=""
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "$cgroup" ] && rmdir "$cgroup" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
declare -A port
for name in up nginx haproxy ours ours-log ours-cold ours-half floor floor-raw floor-cold; do port[$name]=$(free_port); done

nginx_conf() { # $1 name, $2 server block
    mkdir -p "$work/$1"
    cat >"$work/$1/nginx.conf" <<EOF
daemon off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $work/$1/nginx.pid;
error_log $work/$1/error.log warn;
events { worker_connections 15000; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    $2
}
EOF
}
nginx_conf upstream "server { listen 127.0.0.1:${port[up]} backlog=4096; location / { return 200 'ok\n'; } }"
nginx_conf proxy "upstream app { server 127.0.0.1:${port[up]}; keepalive 64; }
    server { listen 127.0.0.1:${port[nginx]} backlog=4096; location / {
        proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
taskset -c 1 "$nginx_bin" -p "$work/upstream" -c "$work/upstream/nginx.conf" & pids+=($!)
taskset -c 1 "$nginx_bin" -p "$work/proxy" -c "$work/proxy/nginx.conf" & nginx_pid=$!; pids+=("$nginx_pid")

issuer=https://clerk.bench.example
azp=https://app.bench.example
"$bin"/retainwise-dev --dir "$work/keys" keygen 2>/dev/null
mint() { "$bin"/retainwise-dev --dir "$work/keys" token --sub "$1" --ttl 7200 --issuer "$issuer" --azp "$azp"; }
token=$(mint user_bench)
for i in $(seq "$ntokens"); do mint "user_$i"; done >"$work/tokens.txt"
openssl pkey -in "$work/keys/signing-key.pem" -pubout -out "$work/keys/public.pem"
# wrk sends each request with the next token of the list.
cat >"$work/rotate.lua" <<EOF
local tokens = {}
for line in io.lines("$work/tokens.txt") do tokens[#tokens + 1] = line end
local i = 0
request = function()
    i = i % #tokens + 1
    return wrk.format(nil, nil, {["Authorization"] = "Bearer " .. tokens[i]})
end
EOF

# HAProxy checks what the proxy checks that its converters can: the
# signature with the key, alg exactly RS256, iss exactly, exp in the future.
cat >"$work/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 60s
    timeout http-keep-alive 300s
frontend fe
    bind 127.0.0.1:${port[haproxy]}
    http-request set-var(txn.bearer) http_auth_bearer
    http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('\$.alg')
    http-request set-var(txn.iss) var(txn.bearer),jwt_payload_query('\$.iss')
    http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('\$.exp','int')
    http-request set-var(txn.now) date()
    http-request deny deny_status 401 unless { var(txn.alg) -m str RS256 }
    http-request deny deny_status 401 unless { var(txn.iss) -m str $issuer }
    http-request deny deny_status 401 if { var(txn.exp),sub(txn.now) -m int lt 0 }
    http-request deny deny_status 401 unless { var(txn.bearer),jwt_verify(txn.alg,"$work/keys/public.pem") -m int 1 }
    default_backend app
backend app
    http-reuse always
    server up 127.0.0.1:${port[up]}
EOF
taskset -c 1 haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 & pids+=($!)

: >"$work/empty.toml"
start_proxy() { # $1 name, $2 binary, then extra VAR=value settings
    local name=$1 binary=$2; shift 2
    env CLERK_ISSUER_URL=$issuer CLERK_AUTHORIZED_PARTIES=$azp \
        PROXY_JWKS_FILE="$work/keys/jwks.json" PROXY_LISTEN="127.0.0.1:${port[$name]}" \
        PROXY_ADMIN_LISTEN="127.0.0.1:$(free_port)" PROXY_UPSTREAM="http://127.0.0.1:${port[up]}" \
        "$@" taskset -c 1 "$binary" --config "$work/empty.toml" >"$work/$name.log" 2>&1 &
}
ours=$bin/retainwise-proxy
start_proxy ours "$ours" PROXY_ACCESS_LOG=false; ours_pid=$!; pids+=($!)
start_proxy ours-log "$ours" PROXY_ACCESS_LOG=true; pids+=($!)
start_proxy ours-cold "$ours" PROXY_ACCESS_LOG=false PROXY_TOKEN_CACHE_SIZE=1; pids+=($!)
start_floor() { # $1 name, $2 token cache size, $3 raw|headermap
    taskset -c 1 "$bin/examples/floor" "127.0.0.1:${port[$1]}" "127.0.0.1:${port[up]}" \
        "$work/keys/jwks.json" "$issuer" "$azp" "$2" "$3" >"$work/$1.log" 2>&1 &
}
start_floor floor 100000 headermap; pids+=($!)
start_floor floor-raw 100000 raw; pids+=($!)
start_floor floor-cold 1 headermap; pids+=($!)
# BASELINE=path/to/an/older/retainwise-proxy adds it, one token and cold,
# to the same run (its access line is off through PROXY_LOG=warn, which
# works on builds without PROXY_ACCESS_LOG).
if [ -n "${BASELINE:-}" ]; then
    port[before]=$(free_port); port[before-cold]=$(free_port)
    start_proxy before "$BASELINE" PROXY_LOG=warn; before_pid=$!; pids+=($!)
    start_proxy before-cold "$BASELINE" PROXY_LOG=warn PROXY_TOKEN_CACHE_SIZE=1; pids+=($!)
fi
# Half a core: a cgroup v1 cpu controller (this machine) or v2 cpu.max.
if [ -w /sys/fs/cgroup/cpu ] && mkdir -p /sys/fs/cgroup/cpu/rw-bench 2>/dev/null; then
    cgroup=/sys/fs/cgroup/cpu/rw-bench
    echo 100000 >"$cgroup/cpu.cfs_period_us"; echo 50000 >"$cgroup/cpu.cfs_quota_us"
elif [ -f /sys/fs/cgroup/cgroup.controllers ] && mkdir -p /sys/fs/cgroup/rw-bench 2>/dev/null; then
    cgroup=/sys/fs/cgroup/rw-bench
    echo "50000 100000" >"$cgroup/cpu.max"
fi
if [ -n "$cgroup" ]; then
    # The proxy starts inside the cgroup, so it sizes its runtime from it.
    echo $$ >"$cgroup/cgroup.procs" 2>/dev/null || echo $$ >"$cgroup/tasks"
    start_proxy ours-half "$ours" PROXY_ACCESS_LOG=false; pids+=($!)
    echo $$ >/sys/fs/cgroup/cpu/cgroup.procs 2>/dev/null || echo $$ >/sys/fs/cgroup/cgroup.procs
else
    echo "note: cannot create a CPU cgroup here; ours-half is left out" >&2
fi

targets=(direct nginx haproxy ours ours-log ours-cold floor floor-raw floor-cold)
[ -n "$cgroup" ] && targets+=(ours-half)
[ -n "${BASELINE:-}" ] && targets+=(before before-cold)
url_of() { case $1 in direct) echo "http://127.0.0.1:${port[up]}/api/uploads";;
    *) echo "http://127.0.0.1:${port[$1]}/api/uploads";; esac; }

for _ in $(seq 50); do
    ok=1
    for t in "${targets[@]}"; do
        [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$(url_of "$t")" || true)" = 200 ] || ok=0
    done
    [ $ok = 1 ] && break
    sleep 0.2
done
# A signature with its last character changed (to one that keeps the
# base64url canonical) must be refused by every peer that checks tokens.
forged=${token%?}; if [ "${token: -1}" = A ]; then forged+=Q; else forged+=A; fi
for t in "${targets[@]}"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$(url_of "$t")" || true)
    [ "$code" = 200 ] || { echo "$t answered $code to a valid token" >&2; cat "$work"/*.log >&2; exit 1; }
    bad=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $forged" "$(url_of "$t")" || true)
    case $t in direct|nginx) ;; *) [ "$bad" = 401 ] || { echo "$t answered $bad to a forged token" >&2; exit 1; };; esac
done
grep -q 'request' "$work/ours-log.log" || { echo "ours-log wrote no access line" >&2; exit 1; }
! grep -q 'request_id' "$work/ours.log" || { echo "ours wrote access lines with the access log off" >&2; exit 1; }

# wrk prints latency in us/ms/s; normalise to microseconds.
to_us() { awk '{v=$1; if (v ~ /us$/) {sub(/us/,"",v); print v} else if (v ~ /ms$/) {sub(/ms/,"",v); print v*1000} else {sub(/s/,"",v); print v*1000000}}'; }
# -H needs its value as one argument, so each branch spells it out.
run_wrk() {
    local t=$1; shift
    case $t in haproxy|*-cold) taskset -c 0 wrk -t1 "$@" -s "$work/rotate.lua" "$(url_of "$t")";;
        *) taskset -c 0 wrk -t1 "$@" -H "Authorization: Bearer $token" "$(url_of "$t")";; esac
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A rps p50
for round in $(seq "$rounds"); do
    # Each round starts one peer later: on this machine the same binary
    # measured first or second in a pair moved by about 3 %, so a fixed
    # order would favour the same peers every round.
    shift_by=$(( (round - 1) % ${#targets[@]} ))
    order=("${targets[@]:shift_by}" "${targets[@]:0:shift_by}")
    for t in "${order[@]}"; do
        out=$(run_wrk "$t" -c50 -d"${seconds}s")
        r=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
        grep -q 'Non-2xx' <<<"$out" && { echo "$t answered errors under load:" >&2; echo "$out" >&2; exit 1; }
        rps[$t]+="$r "
        line=$(printf 'round %d %-11s %9.0f req/s' "$round" "$t" "$r")
        case $t in direct|nginx|ours|floor)
            lat=$(run_wrk "$t" -c1 -d"${seconds}s" --latency)
            l50=$(awk '$1=="50%" {print $2}' <<<"$lat" | to_us)
            p50[$t]+="$l50 "; line+=$(printf '  p50 %6.1f us @1' "$l50");;
        esac
        echo "$line"
    done
done

# 10,000 idle keep-alive connections, each having served one request.
cat >"$work/idle.py" <<'EOF'
import asyncio, sys, time
port, count, token, pids = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:]
def rss():  # KiB, summed over the server's processes
    total = 0
    for pid in pids:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total
request = (f"GET /api/uploads HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n").encode()
async def one(sem):
    async with sem:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head[:40]
        await reader.readexactly(3)
        return writer
async def main():
    before = rss()
    sem = asyncio.Semaphore(200)
    writers = await asyncio.gather(*(one(sem) for _ in range(count)))
    time.sleep(1)
    held = rss()
    for w in writers:
        w.close()
    await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)
    # After the close: at once (2 s), and after an allocator's decay time
    # (jemalloc returns freed pages within 10 s) with room to spare.
    time.sleep(2)
    soon = rss()
    time.sleep(18)
    print(before, held, soon, rss())
asyncio.run(main())
EOF
mapfile -t nginx_workers < <(pgrep -P "$nginx_pid")
read -r n_before n_held n_soon n_after < <(taskset -c 0 python3 "$work/idle.py" "${port[nginx]}" $idle_conns "$token" "$nginx_pid" "${nginx_workers[@]}")
read -r o_before o_held o_soon o_after < <(taskset -c 0 python3 "$work/idle.py" "${port[ours]}" $idle_conns "$token" $ours_pid)
if [ -n "${BASELINE:-}" ]; then
    read -r b_before b_held b_soon b_after < <(taskset -c 0 python3 "$work/idle.py" "${port[before]}" $idle_conns "$token" "$before_pid")
fi

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# min-max; $1 decimals (1: microseconds; ratios get 2).
spread() { tr ' ' '\n' | grep -v '^$' | sort -g | awk -v f="%.${1:-1}f-%.${1:-1}f" 'NR==1 {lo=$1} {hi=$1} END {printf f, lo, hi}'; }
r_n=$(median <<<"${rps[nginx]}"); r_h=$(median <<<"${rps[haproxy]}")
echo
echo "medians over $rounds rounds of ${seconds}s, 50 connections (wrk on core 0, servers on core 1);"
echo "load average (1, 5, 15 min) before the rounds: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| %-44s | %8s | %8s | %9s |\n' peer "req/s" "x nginx" "x HAProxy"
printf '|%s|%s|%s|%s|\n' "----------------------------------------------" "---------:" "---------:" "----------:"
label() { case $1 in direct) echo "direct to the upstream";; nginx) echo "nginx reverse proxy, no auth";;
    haproxy) echo "HAProxy jwt_verify, every request, 1 thread";; ours) echo "retainwise-proxy, one token, access log off";;
    ours-log) echo "retainwise-proxy, one token, access log on";;
    ours-cold) echo "retainwise-proxy, $ntokens tokens, cache size 1";;
    ours-half) echo "retainwise-proxy, one token, 0.5 core";;
    floor) echo "floor (no hyper), one token";;
    floor-raw) echo "floor, heads as bytes, one token";;
    floor-cold) echo "floor (no hyper), $ntokens tokens, cache 1";;
    before) echo "BASELINE build, one token, access log off";;
    before-cold) echo "BASELINE build, $ntokens tokens, cache size 1";; esac; }
for t in "${targets[@]}"; do
    r=$(median <<<"${rps[$t]}")
    awk -v l="$(label "$t")" -v r="$r" -v n="$r_n" -v h="$r_h" \
        'BEGIN {printf "| %-44s | %8.0f | %8.2f | %9.2f |\n", l, r, r/n, r/h}'
done
l_d=$(median <<<"${p50[direct]}"); l_n=$(median <<<"${p50[nginx]}"); l_o=$(median <<<"${p50[ours]}")
awk -v ld="$l_d" -v ln="$l_n" -v lo="$l_o" -v sd="$(spread <<<"${p50[direct]}")" \
    -v sn="$(spread <<<"${p50[nginx]}")" -v so="$(spread <<<"${p50[ours]}")" 'BEGIN {
    printf "p50 at 1 connection (median, min-max): direct %.1f us (%s), nginx %.1f us (%s), ours %.1f us (%s)\n", ld, sd, ln, sn, lo, so
    printf "added p50 of the medians: ours %.1f us, nginx %.1f us, ratio %.2f\n", lo-ld, ln-ld, (ln-ld > 0) ? (lo-ld)/(ln-ld) : 0
}'
# The ratio of the medians swings with the direct figure alone; the ratio
# taken in each round, where all three ran within seconds, is the figure.
read -ra pd <<<"${p50[direct]}"; read -ra pn <<<"${p50[nginx]}"; read -ra po <<<"${p50[ours]}"
ratios=""
for i in "${!pd[@]}"; do
    ratios+=$(awk -v d="${pd[$i]}" -v n="${pn[$i]}" -v o="${po[$i]}" 'BEGIN {if (n > d) printf "%.2f ", (o-d)/(n-d)}')
done
echo "added p50, ours / nginx, per round: $ratios-> median $(median <<<"$ratios") ($(spread 2 <<<"$ratios")) (target <= 1.5)"
read -ra pf <<<"${p50[floor]}"
ratios=""
for i in "${!pd[@]}"; do
    ratios+=$(awk -v d="${pd[$i]}" -v n="${pn[$i]}" -v o="${pf[$i]}" 'BEGIN {if (n > d) printf "%.2f ", (o-d)/(n-d)}')
done
echo "added p50, floor / nginx, per round: $ratios-> median $(median <<<"$ratios") ($(spread 2 <<<"$ratios"))"
# Throughput ratios taken within each round, where both peers ran seconds
# apart: on this machine a whole round can lose half its throughput, which
# moves the medians of the table but not these.
per_round() { # $1 peer, $2 reference, $3 label
    local -a a b
    read -ra a <<<"${rps[$1]}"; read -ra b <<<"${rps[$2]}"
    local r=""
    for i in "${!a[@]}"; do r+=$(awk -v x="${a[$i]}" -v y="${b[$i]}" 'BEGIN {printf "%.2f ", x/y}'); done
    echo "$3, per round: $r-> median $(median <<<"$r") ($(spread 2 <<<"$r"))"
}
per_round ours nginx "one token / nginx (target >= 0.9)"
per_round ours-log nginx "one token, access log on / nginx"
per_round ours-cold haproxy "cold / HAProxy (target >= 1.2)"
per_round floor nginx "floor / nginx"
per_round floor-cold haproxy "floor cold / HAProxy"
[ -n "$cgroup" ] && per_round ours-half ours "half a core / full core"
if [ -n "${BASELINE:-}" ]; then
    per_round ours before "one token / BASELINE"
    per_round ours-cold before-cold "cold / BASELINE"
fi
awk -v c=$idle_conns -v nb="$n_before" -v nh="$n_held" -v ns="$n_soon" -v na="$n_after" \
    -v ob="$o_before" -v oh="$o_held" -v os="$o_soon" -v oa="$o_after" 'BEGIN {
    printf "RSS with %d idle keep-alive connections (each served one request), MiB: idle / held / 2 s after close / 20 s after\n", c
    printf "  nginx (master + worker) %.1f / %.1f / %.1f / %.1f\n", nb/1024, nh/1024, ns/1024, na/1024
    printf "  retainwise-proxy       %.1f / %.1f / %.1f / %.1f   held x nginx %.2f (target <= 3), 20 s after close - idle %.1f MiB (target <= 16)\n", ob/1024, oh/1024, os/1024, oa/1024, oh/nh, (oa-ob)/1024
}'
if [ -n "${BASELINE:-}" ]; then
    awk -v b="$b_before" -v h="$b_held" -v s="$b_soon" -v a="$b_after" -v nh="$n_held" 'BEGIN {
        printf "  BASELINE build          %.1f / %.1f / %.1f / %.1f   held x nginx %.2f\n", b/1024, h/1024, s/1024, a/1024, h/nh
    }'
fi
