"""Speed of `tna run --backend lava-sim` against one Lava network per sample.

Same net and inputs as benchmarks/emulator_speed.py (conv-small-like 16c3-32c3s2-64c3s2-256-10 CUBA
on Fashion-MNIST test images quantised to 0..15, T = 5 plus 5 drain steps). Measured in one run:

  per-sample   one compiled netx network per sample (as lava-dl's tutorials do), stock models
  stock        tna's runner, samples concatenated in one network, lava-nc's own fixed_pt models
  fast         tna's runner, concatenated, exact faster conv model + asynchronous runtime

Each run's outputs are checked against tna's emulator (bit for bit). Goal: the 10k test set in
<= 10 minutes on 2 cores (`--full` runs all 10k with `fast`; otherwise it is extrapolated).

    .venv/bin/python benchmarks/lava_speed.py [--samples 500] [--per-sample 5] [--stock 50] [--full]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from emulator_speed import build_net, load_inputs

from tna.lava.runner import run_lava
from tna.netx import write_net
from tna.sim.emulator import emulate

T = 5


def per_sample_lava(path: Path, x: np.ndarray) -> float:
    """lava-dl tutorial style: build, compile and run one netx network per sample."""
    from tna.lava.harness import record_lava as run_one
    t0 = time.perf_counter()
    run_one(path, x, input_message_bits=8, record=("spikes",))
    return time.perf_counter() - t0


def check(name: str, res, ref) -> str:
    same = np.array_equal(res.spikes.astype(np.int64), ref.out_spikes.numpy().astype(np.int64))
    same &= np.array_equal(res.voltage.astype(np.int64), ref.out_voltage.numpy().astype(np.int64))
    return "exact" if same else "MISMATCH"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=500, help="samples for the fast runner")
    ap.add_argument("--stock", type=int, default=50, help="samples for the stock runner")
    ap.add_argument("--per-sample", type=int, default=5, help="samples, one network each")
    ap.add_argument("--full", action="store_true", help="run the whole 10k test set (fast)")
    args = ap.parse_args(argv)
    n_fast = 10000 if args.full else args.samples
    x, source = load_inputs(max(n_fast, args.stock, args.per_sample))
    model = build_net()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "net.net"
        write_net(model, path)
        emu = emulate(model, x[:n_fast], input_message_bits=8, record=(), record_layers=())

        sec = per_sample_lava(path, x[:args.per_sample])
        rows.append(("one network per sample (stock)", args.per_sample, sec, "-"))
        res = run_lava(path, x[:args.stock], timesteps=T, readout="voltage",
                       input_message_bits=8, progress=False, models="stock")
        rows.append(("concatenated, stock models", args.stock, res.seconds,
                     check("stock", res, _slice(emu, args.stock))))
        res = run_lava(path, x[:n_fast], timesteps=T, readout="voltage",
                       input_message_bits=8, progress=False, models="fast")
        rows.append(("concatenated, fast models", n_fast, res.seconds, check("fast", res, emu)))

    print(f"Lava simulator speed, conv-small-like net, T={T}+5 drain, input: {source}")
    print(f"{'mode':<34}{'samples':>8}{'seconds':>10}{'ms/sample':>11}{'10k est.':>10}  parity")
    base = rows[0][2] / rows[0][1]
    for name, n, sec, ok in rows:
        per = sec / n
        print(f"{name:<34}{n:>8}{sec:>10.1f}{1000 * per:>11.1f}{per * 10000 / 60:>9.1f}m  {ok}"
              f"   ({base / per:.1f}x faster than per-sample)")
    est = rows[-1][2] / rows[-1][1] * 10000 / 60
    print(f"goal: 10k test set <= 10 min -> {est:.1f} min "
          f"({'PASS' if est <= 10 else 'MISS'}{', measured' if args.full else ', extrapolated'})")
    return 0


def _slice(res, n):
    class _S:
        out_spikes = res.out_spikes[:n]
        out_voltage = res.out_voltage[:n]
    return _S


if __name__ == "__main__":
    sys.exit(main())
