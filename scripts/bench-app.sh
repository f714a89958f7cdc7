#!/usr/bin/env bash
# Benchmark of the app service on the embedded backends (SQLite, local
# files, table queue): upload a 1,000,000-row CSV (about 136 MiB), the same
# file gzip-compressed and as an .xlsx workbook (written with openpyxl in
# .dev/bench-venv; BENCH_XLSX=0 skips it), each to a fresh app; report the
# upload throughput, the app's peak RSS during the upload over its idle RSS
# (target: < 64 MiB more), and the worker's time from dequeue to completed
# (target: < 10 s). BENCH_BASE_BIN=PATH also runs another build (say,
# main's) on the CSV, and on the workbook if that build reads one, first,
# in the same run, for a comparison. Everything runs on 127.0.0.1 and is
# stopped by PID. Then the summary route's median response time at ROWS
# rows over 300 rows (BENCH_SUMMARY=0 skips it; BENCH_UPLOADS=0
# BENCH_XLSX=0 runs it alone).
#
# Usage: scripts/bench-app.sh [ROWS]     (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-1000000}"
work=".dev/bench"
bin="${CARGO_TARGET_DIR:-target}/release/retainwise-app"
say() { printf '==> %s\n' "$*"; }

say "building the release binary"
cargo build --release -p retainwise-app --bin retainwise-app >/dev/null

rm -rf "$work/run" && mkdir -p "$work/run"
csv="$work/customers-$rows.csv"
if [ ! -f "$csv" ]; then
    say "generating $csv"
    python3 - "$rows" "$csv" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
contracts = ["Month-to-month", "One year", "Two year"]
internet = ["Fiber optic", "DSL", "No"]
with open(path, "w") as f:
    f.write("customerID,gender,SeniorCitizen,Partner,Dependents,tenure,PhoneService,MultipleLines,"
            "InternetService,OnlineSecurity,OnlineBackup,DeviceProtection,TechSupport,StreamingTV,"
            "StreamingMovies,Contract,PaperlessBilling,PaymentMethod,MonthlyCharges,TotalCharges,Churn\n")
    for i in range(n):
        tenure = (i * 7) % 72
        monthly = 20.0 + (i * 13) % 100
        net = internet[i % 3]
        addon = "No internet service" if net == "No" else ("Yes" if i % 2 == 0 else "No")
        f.write(f"C{i:07},{'Female' if i % 2 == 0 else 'Male'},{i % 2},{'Yes' if i % 3 == 0 else 'No'},No,"
                f"{tenure},Yes,No,{net},{addon},{addon},{addon},{addon},{addon},{addon},{contracts[i % 3]},"
                f"Yes,Electronic check,{monthly:.2f},{monthly * tenure:.2f},No\n")
PY
fi

gz="$csv.gz"
if [ ! -f "$gz" ]; then
    say "compressing $gz"
    gzip -6 -c "$csv" >"$gz"
fi
xlsx="$work/customers-$rows.xlsx"
if [ ! -f "$xlsx" ] && [ "${BENCH_XLSX:-1}" = 1 ]; then
    venv=".dev/bench-venv"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/python" -c 'import openpyxl' 2>/dev/null || "$venv/bin/pip" install -q openpyxl
    say "writing $xlsx (openpyxl, write-only; takes a while)"
    "$venv/bin/python" - "$csv" "$xlsx" <<'PY'
import csv, sys
from openpyxl import Workbook
src, dst = sys.argv[1:3]
wb = Workbook(write_only=True)
ws = wb.create_sheet("customers")
numeric = {"tenure", "MonthlyCharges", "TotalCharges", "SeniorCitizen"}
with open(src, newline="") as f:
    reader = csv.reader(f)
    header = next(reader)
    ws.append(header)
    cols = [h in numeric for h in header]
    for r in reader:
        ws.append([float(v) if n and v else v for v, n in zip(r, cols)])
wb.save(dst)
PY
fi

rss_kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# bench LABEL BINARY FILE: a fresh app (SQLite, files, table queue), one
# upload of FILE, then the worker; prints one line of figures.
bench() {
    local label="$1" bin="$2" file="$3" run="$work/run/$1"
    mkdir -p "$run"
    local size port
    size=$(stat -c %s "$file")
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    export APP_LISTEN="127.0.0.1:$port" APP_METRICS_LISTEN=off RUST_LOG=info
    export DATABASE_URL="sqlite://$run/app.db" STORAGE_URL="file://$run/objects" QUEUE_URL=db
    export APP_MAX_UPLOAD_BYTES=$((1024 * 1024 * 1024))
    "$bin" serve >"$run/serve.log" 2>&1 &
    local serve_pid=$!
    pids+=("$serve_pid")
    for _ in $(seq 1 100); do "$bin" healthcheck --url "http://127.0.0.1:$port/api/health" >/dev/null 2>&1 && break; sleep 0.1; done
    local idle start end peak
    idle=$(rss_kib "$serve_pid" VmRSS)
    start=$(date +%s.%N)
    curl -sS -o "$run/upload.json" -w '%{http_code}' -X POST -H 'X-User-Id: bench' \
        -H 'Content-Type: application/octet-stream' -H 'Expect:' --data-binary "@$file" \
        "http://127.0.0.1:$port/api/uploads?filename=$(basename "$file")" >"$run/status"
    end=$(date +%s.%N)
    peak=$(rss_kib "$serve_pid" VmHWM)
    if [ "$(cat "$run/status")" != 202 ]; then
        echo "$label: upload failed: $(cat "$run/upload.json")" >&2
        kill "$serve_pid"; return 1
    fi
    "$bin" worker >"$run/worker.log" 2>&1 &
    local worker_pid=$!
    pids+=("$worker_pid")
    for _ in $(seq 1 3000); do
        grep -q '"prediction completed"' "$run/worker.log" 2>/dev/null && break
        grep -q '"prediction failed' "$run/worker.log" 2>/dev/null && { cat "$run/worker.log" >&2; break; }
        sleep 0.1
    done
    local worker_peak
    worker_peak=$(rss_kib "$worker_pid" VmHWM)
    kill "$serve_pid" "$worker_pid" 2>/dev/null || true
    wait "$serve_pid" "$worker_pid" 2>/dev/null || true
    python3 - "$label" "$size" "$start" "$end" "$idle" "$peak" "$run/worker.log" "$worker_peak" <<'PY'
import json, sys
label, size, start, end, idle, peak, log, wpeak = sys.argv[1:9]
job_ms = None
for line in open(log):
    try: r = json.loads(line)
    except ValueError: continue
    f = r.get("fields", {})
    if f.get("message") == "prediction completed": job_ms = f["elapsed_ms"]; break
secs = float(end) - float(start)
job = f"{job_ms / 1000:.2f} s" if job_ms is not None else "FAILED"
print(f"{label:<12} {int(size) / 2**20:7.1f} MiB  upload {secs:6.2f} s {int(size) / 2**20 / secs:7.1f} MiB/s  "
      f"serve RSS +{(int(peak) - int(idle)) / 1024:6.1f} MiB  worker {job}  worker peak RSS {int(wpeak) / 1024:.1f} MiB")
PY
}

rm -rf "$work/run" && mkdir -p "$work/run"
if [ "${BENCH_UPLOADS:-1}" = 1 ]; then
    say "1,000,000-row figures (upload throughput counts the bytes sent; RSS growth target < 64 MiB)"
    if [ -n "${BENCH_BASE_BIN:-}" ]; then
        bench base-csv "$BENCH_BASE_BIN" "$csv"
    fi
    bench csv "$bin" "$csv"
    bench csv.gz "$bin" "$gz"
    if [ -f "$xlsx" ]; then
        if [ -n "${BENCH_BASE_BIN:-}" ]; then
            # A build from before the workbook reader refuses the file.
            bench base-xlsx "$BENCH_BASE_BIN" "$xlsx" || say "base-xlsx: that build cannot read a workbook; no comparison"
        fi
        bench xlsx "$bin" "$xlsx"
    fi
fi

# The summary route at 1,000,000 rows against 300 (issue 13: a big
# prediction's page opens as fast as a small one). One app with its worker
# (SQLite, files, table queue); both files from scripts/make-sample-csv.py;
# each summary fetched once to warm up, then BENCH_SUMMARY_N times (default
# 50); the median response time of each and their ratio. BENCH_SUMMARY=0
# skips it.
summary_median_ms() { # port prediction_id
    local n="${BENCH_SUMMARY_N:-50}"
    curl -sS -o /dev/null -H 'X-User-Id: bench' "http://127.0.0.1:$1/api/predictions/$2/summary"
    for _ in $(seq 1 "$n"); do
        curl -sS -o /dev/null -w '%{time_total}\n' -H 'X-User-Id: bench' \
            "http://127.0.0.1:$1/api/predictions/$2/summary"
    done | sort -n | awk '{t[NR] = $1} END {printf "%.3f", t[int((NR + 1) / 2)] * 1000}'
}
if [ "${BENCH_SUMMARY:-1}" = 1 ]; then
    say "summary response time, 1,000,000 rows over 300 (median of ${BENCH_SUMMARY_N:-50} requests each)"
    run="$work/run/summary"
    mkdir -p "$run"
    for n in 300 "$rows"; do
        [ -f "$work/sample-$n.csv" ] || python3 scripts/make-sample-csv.py --rows "$n" "$work/sample-$n.csv"
    done
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    export APP_LISTEN="127.0.0.1:$port" APP_METRICS_LISTEN=off RUST_LOG=warn
    export DATABASE_URL="sqlite://$run/app.db" STORAGE_URL="file://$run/objects" QUEUE_URL=db
    export APP_MAX_UPLOAD_BYTES=$((1024 * 1024 * 1024))
    "$bin" serve --with-worker >"$run/serve.log" 2>&1 &
    serve_pid=$!
    pids+=("$serve_pid")
    for _ in $(seq 1 100); do "$bin" healthcheck --url "http://127.0.0.1:$port/api/health" >/dev/null 2>&1 && break; sleep 0.1; done
    declare -A medians
    for n in 300 "$rows"; do
        id=$(curl -sS -X POST -H 'X-User-Id: bench' -H 'Content-Type: text/csv' -H 'Expect:' \
            --data-binary "@$work/sample-$n.csv" "http://127.0.0.1:$port/api/uploads?filename=sample-$n.csv" |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["prediction_id"])')
        for _ in $(seq 1 3000); do
            status=$(curl -sS -H 'X-User-Id: bench' "http://127.0.0.1:$port/api/predictions/$id" |
                python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
            [ "$status" = completed ] || [ "$status" = failed ] && break
            sleep 0.1
        done
        [ "$status" = completed ] || { echo "summary bench: the $n-row prediction is $status" >&2; exit 1; }
        medians[$n]=$(summary_median_ms "$port" "$id")
        bytes=$(curl -sS -H 'X-User-Id: bench' "http://127.0.0.1:$port/api/predictions/$id/summary" | wc -c)
        printf '%-9s rows: summary median %s ms (%s bytes)\n' "$n" "${medians[$n]}" "$bytes"
    done
    kill "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
    python3 -c "import sys; print(f'summary ratio {sys.argv[1]} rows / 300 rows: {float(sys.argv[2]) / float(sys.argv[3]):.2f}')" \
        "$rows" "${medians[$rows]}" "${medians[300]}"
fi
