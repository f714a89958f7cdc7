#!/usr/bin/env bash
# Runs every check and test of the project: formatting, lints, unit,
# integration and end-to-end tests. Provisions what the tests need first
# and stops whatever it started, by PID, on the way out.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*"; }
need() { command -v "$1" >/dev/null 2>&1; }

# promtool (Debian's prometheus package) checks the /metrics exposition.
if ! need promtool; then
    if need apt-get && [ "$(id -u)" = 0 ]; then
        say "installing Debian's prometheus package for promtool"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
    else
        echo "promtool is missing: install Debian's prometheus package (apt-get install prometheus)" >&2
        exit 1
    fi
fi
# Debian's chromium and chromium-driver: the browser tests drive headless
# Chromium through chromedriver (retainwise-testkit, feature browser).
if ! need chromium || ! need chromedriver; then
    if need apt-get && [ "$(id -u)" = 0 ]; then
        say "installing Debian's chromium and chromium-driver for the browser tests"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    else
        echo "chromium or chromedriver is missing: install Debian's chromium and chromium-driver packages (apt-get install chromium chromium-driver)" >&2
        exit 1
    fi
fi
need cargo || { echo "cargo is missing: install Rust with rustup (https://rustup.rs)" >&2; exit 1; }

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

say "infra checks (terraform fmt, checkov, hadolint, actionlint, zizmor, promtool)"
bash scripts/check-infra.sh

say "fetching the Telco churn data (app model tests)"
scripts/fetch-telco-data.sh

say "starting PostgreSQL 15 and moto (app production-backend tests)"
trap 'scripts/services.sh stop' EXIT
scripts/services.sh start
# shellcheck disable=SC1091
source .dev/services/env

say "cargo test"
cargo test --workspace --locked
