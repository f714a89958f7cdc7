# shellcheck shell=bash
# Shared by the deploy scripts (sourced, not run). They run from the
# repository root, in CI or on an operator's machine with the same
# variables set.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
need_var() {
    local name
    for name in "$@"; do
        [ -n "${!name:-}" ] || die "$name is not set"
    done
}

# The production variables file: CI writes it from PRODUCTION_TFVARS; an
# operator keeps infra/prod.tfvars (ignored by git).
TFVARS=infra/prod.tfvars
write_tfvars() {
    if [ -n "${PRODUCTION_TFVARS:-}" ]; then
        printf '%s\n' "$PRODUCTION_TFVARS" > "$TFVARS"
    fi
    [ -s "$TFVARS" ] || die "$TFVARS is missing: set PRODUCTION_TFVARS or write the file"
}

tf() { terraform -chdir=infra "$@"; }
