"""Median time of one generator forward in onnxruntime (CPU provider), to compare with
`ugatit-train bench forward` on the same machine (docs/PERFORMANCE.md).

    python3 scripts/bench_onnxruntime.py MODEL.onnx [--size 256] [--threads 2] [--repeat 7]

MODEL.onnx is one of our exports (`ugatit-infer export --format onnx`); the input is one random
image in [-1, 1]. Prints one JSON line like the bench commands.
"""

import argparse
import json
import statistics
import time

import numpy as np
import onnxruntime as ort


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=7)
    a = p.parse_args()
    options = ort.SessionOptions()
    options.intra_op_num_threads = a.threads
    session = ort.InferenceSession(a.model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, a.size, a.size)).astype(np.float32)
    session.run(None, {name: x})
    times = []
    for _ in range(a.repeat):
        start = time.perf_counter()
        session.run(None, {name: x})
        times.append(time.perf_counter() - start)
    print(json.dumps({
        "what": "forward", "runtime": f"onnxruntime {ort.__version__}", "size": a.size,
        "threads": a.threads, "median_s": statistics.median(times), "min_s": min(times),
    }))


if __name__ == "__main__":
    main()
