"""Memory of long Lava runs: peak RSS of `tna.lava.runner.run_lava` at 1k and 10k samples.

Net: a digits-shaped CUBA MLP, 64-256-128-10, random even integer weights in [-256, 254],
hidden threshold vThMant 32, readout layer non-spiking (voltage readout), decays 1024/123 of
4096 -- the shape `tna train --dataset digits --arch mlp` exports; or any .net with `--net`.
Input: scikit-learn digits test images (359) quantised to 0..15 (direct encoding, graded input
with input_message_bits=8), repeated to reach N samples; T = 5.

Each N runs in a fresh subprocess so that its high-water marks are its own:
  self_peak_mb      ru_maxrss of the process calling run_lava (RUSAGE_SELF)
  children_peak_mb  ru_maxrss over its exited children (the largest single Lava process)
  tree_rss_peak_mb  largest sum of VmRSS over the process and all its descendants, sampled
                    every 0.1 s while Lava runs; counts pages shared by the forked Lava
                    processes once per process, so it overstates the total
  tree_pss_peak_mb  the same with PSS (shared pages split between their users): what the
                    machine actually holds
The inputs (N x 64 x 5 int64) are part of the process: 2.6 MB at 1k, 26 MB at 10k.

    .venv/bin/python benchmarks/lava_memory.py                    # 1000 then 10000 samples
    .venv/bin/python benchmarks/lava_memory.py --sizes 1000 --net digits.net
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from tna.netx import Layer, NetxModel, write_net
from tna.neurons import Cuba

T = 5                       # steps per sample
INPUT_BITS = 4              # digits quantised to 0..15
HIDDEN = Cuba(i_decay=1024, v_decay=123, vth_mant=32)
READOUT = Cuba(i_decay=1024, v_decay=123, vth_mant=2**17 - 1)
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def build_net(seed=0) -> NetxModel:
    rng = np.random.default_rng(seed)
    sizes = [64, 256, 128, 10]
    layers = [Layer("input", (64,))]
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        w = np.clip(np.round(rng.normal(0, 4.0, (n_out, n_in))), -128, 127) * 2
        layers.append(Layer("dense", (n_out,), weight=w.astype(np.float32),
                            neuron=READOUT if i == len(sizes) - 2 else HIDDEN,
                            in_features=n_in, out_features=n_out))
    return NetxModel(layers=layers)


def digits_inputs(n: int) -> np.ndarray:
    """(n, 64, T) integers 0..15: the digits test split, repeated."""
    from tna.data import load_dataset

    x = load_dataset("digits").x_test.reshape(-1, 64).numpy().astype(np.int64)
    x = np.round(x * (2**INPUT_BITS - 1) / 255).astype(np.int64)
    x = np.resize(x, (n, 64))
    return np.repeat(x[..., None], T, axis=-1)


def _pss_kb(pid: int) -> int:
    """Proportional set size: private pages plus a 1/k share of pages shared by k processes."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def tree_kb(root: int) -> tuple:
    """(sum of RSS, sum of PSS) in kB over `root` and all its descendants (from /proc)."""
    parent = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            parent[int(entry)] = int(stat[stat.rindex(")") + 2:].split()[1])
    rss = pss = 0
    todo, seen = [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/statm") as f:
                rss += int(f.read().split()[1]) * PAGE_KB
            pss += _pss_kb(pid)
        except (OSError, IndexError, ValueError):
            continue           # exited meanwhile
        todo += [child for child, p in parent.items() if p == pid]
    return rss, pss


def measure(net: Path, n: int) -> dict:
    """Run n samples through Lava in this process; the memory figures above."""
    from tna.lava.runner import run_lava

    inputs = digits_inputs(n)
    peak = {"rss": 0, "pss": 0}
    running = threading.Event()
    running.set()

    def sample():
        while running.is_set():
            rss, pss = tree_kb(os.getpid())
            peak["rss"], peak["pss"] = max(peak["rss"], rss), max(peak["pss"], pss)
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    res = run_lava(net, inputs, timesteps=T, readout="voltage", input_message_bits=8,
                   progress=False)
    seconds = time.perf_counter() - t0
    running.clear()
    sampler.join()
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"samples": n, "seconds": round(seconds, 2),
            "ms_per_sample": round(1000 * seconds / n, 3), "lava_steps": res.steps,
            "self_peak_mb": round(own, 1), "children_peak_mb": round(kids, 1),
            "tree_rss_peak_mb": round(peak["rss"] / 1024, 1),
            "tree_pss_peak_mb": round(peak["pss"] / 1024, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--net", type=Path, help="netx file (default: a random digits MLP)")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)   # child mode: one size
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure(args.net, args.one)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        net = args.net or write_net(build_net(), Path(tmp) / "digits-mlp.net")
        rows = []
        for n in args.sizes:
            out = subprocess.run([sys.executable, __file__, "--one", str(n), "--net", str(net)],
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    print(f"{'samples':>8} {'s':>8} {'ms/sample':>10} {'self MB':>8} {'children MB':>12} "
          f"{'tree RSS MB':>12} {'tree PSS MB':>12}")
    for r in rows:
        print(f"{r['samples']:>8} {r['seconds']:>8} {r['ms_per_sample']:>10} "
              f"{r['self_peak_mb']:>8} {r['children_peak_mb']:>12} {r['tree_rss_peak_mb']:>12} "
              f"{r['tree_pss_peak_mb']:>12}")
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        grow = b["tree_pss_peak_mb"] - a["tree_pss_peak_mb"]
        print(f"tree PSS peak grows {grow:+.1f} MB from {a['samples']} to {b['samples']} "
              f"samples ({grow / (b['samples'] - a['samples']) * 1024:.2f} kB per extra sample)")


if __name__ == "__main__":
    main()
