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

# Tests read event files back with the real TensorBoard package, run ONNX exports in
# onnxruntime after the official onnx checker, and start moto_server, a real S3-compatible
# server, on a loopback port for the bucket runs.
if ! python3 -c "import tensorboard, onnx, onnxruntime, moto" 2>/dev/null || ! command -v moto_server >/dev/null; then
    step "pip install tensorboard onnx onnxruntime moto[server]"
    python3 -m pip install --quiet --disable-pip-version-check tensorboard onnx onnxruntime "moto[server]"
fi

# The upload page's test drives headless Chromium through chromedriver (Debian packages).
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    step "apt-get install chromium chromium-driver"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
fi

# The several-machines tests start Redis (Debian's redis-server) and an SMTP sink (Python's
# aiosmtpd) on loopback ports.
if ! command -v redis-server >/dev/null; then
    step "apt-get install redis-server"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
fi
if ! python3 -c "import aiosmtpd" 2>/dev/null; then
    step "pip install aiosmtpd"
    python3 -m pip install --quiet --disable-pip-version-check aiosmtpd
fi

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo check with the CUDA backend"
cargo check -p ugatit-train -p ugatit-infer --features cuda --locked

step "cargo test --release"
cargo test --workspace --release --locked
