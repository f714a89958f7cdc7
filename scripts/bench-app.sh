#!/usr/bin/env bash
# Benchmark of the app service on the embedded backends (SQLite, local
# files, table queue): upload a 1,000,000-row CSV (about 100 MB), report the
# upload throughput, the app's peak RSS during the upload over its idle RSS
# (target: < 64 MiB more), and the worker's time from dequeue to completed
# (target: < 10 s). Everything runs on 127.0.0.1 and is stopped by PID.
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
size=$(stat -c %s "$csv")

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export APP_LISTEN="127.0.0.1:$port" APP_METRICS_LISTEN=off RUST_LOG=info
export DATABASE_URL="sqlite://$work/run/app.db" STORAGE_URL="file://$work/run/objects" QUEUE_URL=db
export APP_MAX_UPLOAD_BYTES=$((1024 * 1024 * 1024))

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

"$bin" serve >"$work/run/serve.log" 2>&1 &
pids+=($!)
serve_pid=$!
for _ in $(seq 1 100); do "$bin" healthcheck --url "http://127.0.0.1:$port/api/health" >/dev/null 2>&1 && break; sleep 0.1; done
rss_kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
idle=$(rss_kib "$serve_pid" VmRSS)

say "uploading $rows rows ($((size / 1024 / 1024)) MiB)"
start=$(date +%s.%N)
curl -sS -o "$work/run/upload.json" -w '%{http_code}' -X POST -H 'X-User-Id: bench' \
    -H 'Content-Type: text/csv' -H 'Expect:' --data-binary "@$csv" \
    "http://127.0.0.1:$port/api/uploads?filename=bench.csv" >"$work/run/status"
end=$(date +%s.%N)
peak=$(rss_kib "$serve_pid" VmHWM)
[ "$(cat "$work/run/status")" = 202 ] || { echo "upload failed: $(cat "$work/run/upload.json")" >&2; exit 1; }
prediction=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["prediction_id"])' "$work/run/upload.json")

say "scoring with the worker"
"$bin" worker >"$work/run/worker.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 1200); do
    grep -q '"prediction completed"' "$work/run/worker.log" 2>/dev/null && break
    grep -q '"prediction failed' "$work/run/worker.log" 2>/dev/null && { cat "$work/run/worker.log" >&2; exit 1; }
    sleep 0.1
done
job_ms=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    try: r = json.loads(line)
    except ValueError: continue
    f = r.get("fields", {})
    if f.get("message") == "prediction completed": print(f["elapsed_ms"]); break
' "$work/run/worker.log")

python3 - "$size" "$start" "$end" "$idle" "$peak" "$job_ms" "$rows" "$prediction" <<'PY'
import sys
size, start, end, idle, peak, job_ms, rows, pid = sys.argv[1:9]
secs = float(end) - float(start)
print(f"rows                      {int(rows):,}")
print(f"file                      {int(size) / 2**20:.1f} MiB")
print(f"upload                    {secs:.2f} s, {int(size) / 2**20 / secs:.1f} MiB/s")
print(f"app RSS idle / peak       {int(idle) / 1024:.1f} MiB / {int(peak) / 1024:.1f} MiB "
      f"(+{(int(peak) - int(idle)) / 1024:.1f} MiB; target < 64)")
print(f"worker dequeue→completed  {int(job_ms) / 1000:.2f} s (target < 10)")
print(f"prediction                {pid}")
PY
