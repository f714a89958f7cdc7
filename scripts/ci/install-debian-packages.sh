#!/usr/bin/env bash
# The Debian packages scripts/test.sh needs on a bare debian:bookworm (the
# CI container): a C toolchain for the Rust crates that build C, Python for
# the pinned tool venvs and moto, PostgreSQL 15's server binaries, and
# Debian's prometheus package (promtool and the server).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    ca-certificates curl git build-essential pkg-config cmake clang \
    python3 python3-pip python3-venv \
    postgresql-15 prometheus unzip >/dev/null
