#!/usr/bin/env bash
# The GPU check of issue 11: the step-parity test on CUDA (four official training steps against
# the PyTorch reference, every loss term, and the trained generator's forward image), then `ugatit-train bench` next to the PyTorch reference's bench_torch.py on
# the same card, light and full at 256, f32 and bf16, printed as one table. Meant to finish in
# under 8 minutes on one NVIDIA GPU. It has NOT run anywhere yet.
#
# Build on a machine with this checkout (offline is fine: burn-cuda compiles its kernels with
# NVRTC at run time), from the repository root:
#
#   scripts/gpu-check.sh --prep
#
# which runs
#
#   cargo build --release --features cuda -p ugatit-train -p ugatit-infer
#   cargo test --release --features cuda -p ugatit-train --test step_parity --no-run
#
# and copies the test binary to target/gpu-check/ and /work/shared/reference (or
# $UGATIT_REFERENCE) to target/gpu-check/shared-ref/ (target/ is ignored by git).
#
# Carry to the GPU machine, into the same checkout's root:
#
#   target/release/ugatit-train  target/gpu-check/
#
# Run there, from the repository root (needs nvidia-smi, the CUDA driver and NVRTC, and
# python3 with torch built for CUDA):
#
#   scripts/gpu-check.sh [--device cuda:0] [--repeat 5]
#
# Peak GPU memory: burn 0.21 exposes no peak figure (cubecl's client reports only the pool's
# current use), so the script samples nvidia-smi's memory.used every 100 ms while each command
# runs, for ours and PyTorch's alike (this counts the CUDA context and allocator caches);
# PyTorch's own torch.cuda.max_memory_allocated is printed beside it.

set -euo pipefail

out=target/gpu-check
device=cuda:0
repeat=5

prep() {
    local ref=${UGATIT_REFERENCE:-/work/shared/reference}
    cargo build --release --features cuda -p ugatit-train -p ugatit-infer
    mkdir -p "$out"
    local exe
    exe=$(cargo test --release --features cuda -p ugatit-train --test step_parity --no-run 2>&1 |
        sed -n 's/.*Executable.*(\(.*\)).*/\1/p' | tail -n 1)
    cp "$exe" "$out/step_parity"
    rm -rf "$out/shared-ref"
    cp -r "$ref" "$out/shared-ref"
    du -sh target/release/ugatit-train "$out"
}

while [ $# -gt 0 ]; do
    case $1 in
        --prep) prep; exit 0 ;;
        --device) device=$2; shift 2 ;;
        --repeat) repeat=$2; shift 2 ;;
        *) echo "usage: scripts/gpu-check.sh [--prep] [--device cuda:N] [--repeat N]" >&2; exit 2 ;;
    esac
done

index=${device#cuda:}
[ "$index" = cuda ] && index=0
for f in target/release/ugatit-train "$out/step_parity" "$out/shared-ref/bench_torch.py"; do
    [ -e "$f" ] || { echo "$f is missing: build and carry it (see the top of $0)" >&2; exit 1; }
done
card=$(nvidia-smi --query-gpu=name --format=csv,noheader -i "$index")
echo "card: $card ($device)"

# Runs "$@" while sampling the card's memory.used; prints the command's last stdout line, then
# a tab and the peak MiB seen.
with_peak() {
    local log samples pid peak
    log=$(mktemp)
    samples=$(mktemp)
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i "$index" -lms 100 >"$samples" &
    pid=$!
    # A command that fails (a kernel burn-cuda cannot compile, memory) gets NaN in the table.
    if ! "$@" >"$log"; then
        echo '{"median_s": NaN}' >"$log"
    fi
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    peak=$(sort -n "$samples" | tail -n 1)
    printf '%s\t%s\n' "$(tail -n 1 "$log")" "${peak:-?}"
    rm -f "$log" "$samples"
}

echo "== tests on $device"
export UGATIT_TEST_DEVICE=$device
# A failing test is reported and the timings still run.
CARGO_MANIFEST_DIR=$PWD/ugatit-train "$out/step_parity" --nocapture --test-threads 1 2>&1 |
    tail -n 20 || true
unset UGATIT_TEST_DEVICE

config=$(mktemp --suffix=.toml)
trap 'rm -f "$config"' EXIT
rows=()
for light in true false; do
    printf '[model]\nimg_size = 256\nlight = %s\n' "$light" >"$config"
    for what in forward step; do
        for precision in f32 bf16; do
            ours=$(with_peak target/release/ugatit-train bench "$what" --config "$config" \
                --device "$device" --precision "$precision" --repeat "$repeat")
            amp=none
            [ "$precision" = bf16 ] && amp=bf16
            flag=()
            [ "$light" = true ] && flag=(--light)
            theirs=$(with_peak python3 "$out/shared-ref/bench_torch.py" "$what" --size 256 \
                "${flag[@]}" --device cuda --amp "$amp" --repeat "$repeat")
            rows+=("$light	$what	$precision	$ours	$theirs")
        done
    done
done

echo "== $card: medians of $repeat runs (s), peak GPU memory (MiB, nvidia-smi)"
printf '%s\n' "${rows[@]}" | python3 -c '
import json, sys
head = ("model", "work", "prec", "ours s", "torch s", "ratio", "ours MiB", "torch MiB", "torch alloc")
print("%-6s %-8s %-5s %8s %8s %6s %9s %9s %11s" % head)
for line in sys.stdin:
    light, what, prec, ours, ours_mem, theirs, theirs_mem = line.rstrip("\n").split("\t")
    o, t = json.loads(ours), json.loads(theirs)
    model = "light" if light == "true" else "full"
    ratio = o["median_s"] / t["median_s"]
    print("%-6s %-8s %-5s %8.3f %8.3f %6.2f %9s %9s %11.0f" % (model, what, prec, o["median_s"],
          t["median_s"], ratio, ours_mem, theirs_mem, t.get("peak_gpu_mb", float("nan"))))
'
