"""What the Loihi 2 estimate itself costs: seconds per 1,000 samples of activity counting
(tna.estimate.count, which runs the emulator and counts every synaptic op per neuron), against
the emulator's plain accuracy pass (what `tna export` already runs on every export), and the
fit alone (no data).

Net: benchmarks/emulator_speed.py's 16c3-32c3s2-64c3s2-256-10 CUBA net on 1x28x28 (random 8-bit
weights); input: Fashion-MNIST test images quantised to 0..15 when installed, else random.

    .venv/bin/python benchmarks/estimate_speed.py [--samples 1000] [--threads 2]

Goal: counting adds at most about as much as the export's own emulator check, so the
estimate can run on every export.
"""
from __future__ import annotations

import argparse
import time

import torch
from emulator_speed import build_net, load_inputs

from tna.estimate import EstimateConfig, count, estimate
from tna.sim.emulator import emulate


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = build_net()
    x, src = load_inputs(args.samples)
    per_k = 1000 / args.samples
    fit_s = best_of(lambda: estimate(model, EstimateConfig()), args.repeats)
    plain_s = best_of(lambda: emulate(model, x, input_message_bits=8, record_layers=()),
                      args.repeats)
    count_s = best_of(lambda: count(model, x, input_message_bits=8), args.repeats)
    est = estimate(model, EstimateConfig(), count(model, x, input_message_bits=8))
    print(f"net: conv-small (random weights), {args.samples} samples of {src}, T = "
          f"{x.shape[-1]}, {args.threads} threads, best of {args.repeats}")
    print(f"  fit (no data):                   {1000 * fit_s:8.1f} ms")
    print(f"  emulator accuracy pass:          {plain_s * per_k:8.2f} s per 1,000 samples")
    print(f"  activity count (estimate):       {count_s * per_k:8.2f} s per 1,000 samples "
          f"({count_s / plain_s:.2f}x the accuracy pass)")
    print(f"  {est.brief()}")


if __name__ == "__main__":
    main()
