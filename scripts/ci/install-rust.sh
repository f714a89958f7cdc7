#!/usr/bin/env bash
# Installs one pinned Rust toolchain with rustfmt and clippy through rustup.
#   scripts/ci/install-rust.sh 1.95.0
set -euo pipefail
toolchain="${1:?usage: install-rust.sh TOOLCHAIN}"
if ! command -v rustup >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/rustup" ]; then
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
        | sh -s -- -y --no-modify-path --profile minimal --default-toolchain none
fi
export PATH="$HOME/.cargo/bin:$PATH"
rustup toolchain install "$toolchain" --profile minimal --component rustfmt,clippy
rustup default "$toolchain"
rustc --version
