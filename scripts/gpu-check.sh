#!/usr/bin/env bash
# The GPU check: the golden tests on a GPU backend (every generator and discriminator output of
# the PyTorch and TF references, the spectral-norm vectors, four official training steps with
# every loss term and the trained image), then `ugatit-train bench` next to the PyTorch
# reference's bench_torch.py, light and full, forward and step, f32 and bf16, as one table.
# Meant to finish in under 8 minutes on one NVIDIA GPU at 256.
#
# It takes the device, so the whole script runs before a CUDA machine is at hand: on wgpu with
# Mesa's software Vulkan device (lavapipe) it is a dry run, which proves the script and the GPU
# code path; its times are the cost of the check on a CPU, never a GPU's figures, and the table
# says so.
#
# Build on a machine with this checkout (offline is fine: burn-cuda compiles its kernels with
# NVRTC at run time), from the repository root:
#
#   scripts/gpu-check.sh --prep [--backend cuda|wgpu]        (default cuda)
#
# which builds `ugatit-train` and the parity test binary (golden forwards, training steps,
# replicas) with that feature (for wgpu, the test command's own build) into target/gpu-check/
# (ignored by git), stripped and packed as binaries.tar.xz (about 30 MB), and copies
# bench_torch.py and ugatit_ref.py of ../shared/reference (or $UGATIT_REFERENCE) there as
# target/gpu-check/shared-ref/. Carry target/gpu-check/ to the GPU
# machine, into the same checkout's root (the tests read the checkout's fixtures), and run there:
#
#   scripts/gpu-check.sh [--device cuda:0|wgpu[:N]] [--size 256] [--ch 64] [--repeat 5]
#
# (a dry run on lavapipe: --device wgpu --size 96 --ch 8 --repeat 1, a few minutes)
#
# CUDA needs nvidia-smi, the driver and NVRTC, and python3 with torch built for CUDA. wgpu needs
# a Vulkan (or Metal) driver; PyTorch runs on the CPU beside it (torch has no Vulkan backend).
#
# Peak GPU memory: burn 0.21 exposes no peak figure (cubecl's client reports only the pool's
# current use), so on CUDA the script samples nvidia-smi's memory.used every 100 ms while each
# command runs, for ours and PyTorch's alike (this counts the CUDA context and allocator caches);
# PyTorch's own torch.cuda.max_memory_allocated is printed beside it. wgpu has no such counter.

set -euo pipefail

out=target/gpu-check
device=cuda:0
backend=cuda
size=256
ch=64
repeat=5

prep() {
    local ref=${UGATIT_REFERENCE:-../shared/reference}
    # The packages and features of the test command's build, in the release profile (timed code).
    local build=(--release --locked --workspace
        --features "ugatit-train/$backend,ugatit-infer/$backend,ugatit-serve/$backend")
    mkdir -p "$out"
    # `cargo test --no-run` builds ugatit-train's binary beside its test, with the test build's
    # features (a plain `cargo build` leaves the dev-dependencies' features out and recompiles).
    local parity
    parity=$(cargo test "${build[@]}" --test parity --no-run 2>&1 | tee /dev/stderr |
        sed -n 's/.*Executable tests\/parity\/main.rs (\(.*\)).*/\1/p')
    # Stripped and packed: the two binaries are 180 MB as built, 30 MB so (a device machine
    # takes 64 MiB of carried files); the run unpacks them.
    rm -rf "$out/ugatit-train" "$out/parity" "$out/shared-ref"
    strip -o "$out/ugatit-train" target/release/ugatit-train
    strip -o "$out/parity" "$parity"
    tar -C "$out" -cJf "$out/binaries.tar.xz" ugatit-train parity
    rm "$out/ugatit-train" "$out/parity"
    mkdir -p "$out/shared-ref"
    cp "$ref/bench_torch.py" "$ref/ugatit_ref.py" "$out/shared-ref/"
    du -sh "$out"
}

usage="usage: scripts/gpu-check.sh --prep [--backend cuda|wgpu] | [--device cuda:N|wgpu[:N]] [--size S] [--ch C] [--repeat N]"
mode=run
while [ $# -gt 0 ]; do
    case $1 in
        --prep) mode=prep; shift ;;
        --backend) backend=$2; shift 2 ;;
        --device) device=$2; shift 2 ;;
        --size) size=$2; shift 2 ;;
        --ch) ch=$2; shift 2 ;;
        --repeat) repeat=$2; shift 2 ;;
        *) echo "$usage" >&2; exit 2 ;;
    esac
done
case $backend in cuda | wgpu) ;; *) echo "--backend $backend: cuda or wgpu" >&2; exit 2 ;; esac
if [ "$mode" = prep ]; then
    prep
    exit 0
fi

if [ -f "$out/binaries.tar.xz" ]; then
    tar -C "$out" -xJf "$out/binaries.tar.xz"
fi
for f in "$out/ugatit-train" "$out/parity" "$out/shared-ref/bench_torch.py"; do
    [ -e "$f" ] || { echo "$f is missing: build and carry it (see the top of $0)" >&2; exit 1; }
done
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}

dry=""
case $device in
    cuda | cuda:*)
        index=${device#cuda}
        index=${index#:}
        index=${index:-0}
        card=$(nvidia-smi --query-gpu=name --format=csv,noheader -i "$index")
        torch_device=cuda
        ;;
    wgpu | wgpu:*)
        # The adapter's row of `devices`: the one named, or the default one.
        listing=$("$out/ugatit-train" devices)
        echo "$listing"
        if [ "$device" = wgpu ]; then
            row=$(echo "$listing" | grep '^wgpu:' | grep '(default)' || echo "$listing" | grep -m1 '^wgpu:' || true)
        else
            row=$(echo "$listing" | grep "^$device " || true)
        fi
        [ -n "$row" ] || { echo "--device $device: no such adapter (see the list above)" >&2; exit 1; }
        card=$(echo "$row" | awk '{ $1 = $2 = $3 = $4 = ""; sub(/^ +/, ""); print }')
        kind=$(echo "$row" | awk '{ print $2 }')
        [ "$kind" = software ] && dry="DRY RUN on a software Vulkan device: times are the check's cost on a CPU, not a GPU's figures"
        torch_device=cpu
        ;;
    *) echo "--device $device: cuda[:N] or wgpu[:N]" >&2; exit 2 ;;
esac
echo "card: $card ($device)"
[ -n "$dry" ] && echo "$dry"

# Runs "$@" while sampling the card's memory.used (CUDA only); prints the command's last stdout
# line, then a tab and the peak MiB seen ("-" where there is no counter).
with_peak() {
    local log samples pid="" peak=-
    log=$(mktemp)
    samples=$(mktemp)
    if [ "$torch_device" = cuda ]; then
        nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i "$index" -lms 100 >"$samples" &
        pid=$!
    fi
    # A command that fails (a kernel the backend cannot compile, memory, no torch) gets NaN.
    if ! "$@" >"$log" 2>"$log.err"; then
        echo "  failed: $* ($(tail -n 1 "$log.err"))" >&2
        echo '{"median_s": NaN}' >"$log"
    fi
    if [ -n "$pid" ]; then
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        peak=$(sort -n "$samples" | tail -n 1)
    fi
    printf '%s\t%s\n' "$(tail -n 1 "$log")" "${peak:-?}"
    rm -f "$log" "$log.err" "$samples"
}

echo "== parity tests on $device"
export UGATIT_TEST_DEVICE=$device
# A failing test is reported and the timings still run.
failed=0
CARGO_MANIFEST_DIR=$PWD/ugatit-train "$out/parity" --test-threads 1 2>&1 | tail -n 8 || failed=1
unset UGATIT_TEST_DEVICE

config=$(mktemp --suffix=.toml)
trap 'rm -f "$config"' EXIT
rows=()
for light in true false; do
    printf '[model]\nimg_size = %s\nch = %s\nlight = %s\n' "$size" "$ch" "$light" >"$config"
    for what in forward step; do
        for precision in f32 bf16; do
            ours=$(with_peak "$out/ugatit-train" bench "$what" --config "$config" \
                --device "$device" --precision "$precision" --repeat "$repeat")
            amp=none
            [ "$precision" = bf16 ] && amp=bf16
            flag=()
            [ "$light" = true ] && flag=(--light)
            theirs=$(with_peak python3 "$out/shared-ref/bench_torch.py" "$what" --size "$size" --ch "$ch" \
                "${flag[@]}" --device "$torch_device" --amp "$amp" --repeat "$repeat")
            rows+=("$light	$what	$precision	$ours	$theirs")
        done
    done
done

echo "== $card ($device), torch on $torch_device: medians of $repeat runs (s) at $size px, ch $ch, peak GPU memory (MiB, nvidia-smi)"
[ -n "$dry" ] && echo "== $dry"
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
exit "$failed"
