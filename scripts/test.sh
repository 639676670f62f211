#!/usr/bin/env bash
# Everything CI checks, in one command: formatting, lints, the CUDA build (type-checked only: no
# GPU here), and the whole test suite in release mode (the numerics are too slow unoptimised).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
    echo "cargo not found: install Rust with https://rustup.rs first" >&2
    exit 1
fi
for component in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
        rustup component add "$component"
    fi
done

step() { printf '\n==> %s\n' "$*"; }

# The trainer's tests read its event files back with the real TensorBoard package.
if ! python3 -c "import tensorboard" 2>/dev/null; then
    step "pip install tensorboard"
    python3 -m pip install --quiet --disable-pip-version-check tensorboard
fi

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo check with the CUDA backend"
cargo check -p ugatit-train -p ugatit-infer --features cuda --locked

step "cargo test --release"
cargo test --workspace --release --locked
