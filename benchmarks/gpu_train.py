"""Training throughput on one GPU, per dynamics path: slayer's CUDA kernels vs its PyTorch path.

    .venv/bin/python benchmarks/gpu_train.py                     # cuda, conv-small and cifarnet
    .venv/bin/python benchmarks/gpu_train.py --device cpu --batches 3 --batch-size 32   # smoke test

For each net (conv-small, CIFARNet; Fashion-MNIST-shaped 1x28x28 input, T = 5, direct input)
and each path of `tna.models.dynamics` (`slayer`: its nvcc-JIT CUDA kernels, `torch`: its
PyTorch loop; on CPU `fused`, tna's C kernel, too), one TNA training step is timed as
`tna train` does it: base and twin forward, Eq. 5 loss, backward, Adam step. Synthetic batches
(random 4-bit images) keep data loading out of the figure. A path that cannot run here (no
nvcc, headers that do not build) is reported as such.

Goals (the issue "Accurate by default"), one process on one H100/H200:
conv-small TNA >= 10,000 samples/s; CIFARNet TNA >= 1,500 samples/s.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

GOALS = {"conv-small": 10_000, "cifarnet": 1_500}


def measure(arch, impl, device, batch, batches, warmup) -> float:
    import torch

    from tna.models.snn import build_model
    from tna.models.spec import make_spec
    from tna.train.loop import loss_terms

    os.environ["TNA_DYNAMICS"] = impl
    spec = make_spec(arch, (1, 28, 28), 10, current_decay=1.0, tau_grad=0.02, scale_grad=10.0,
                     input_scale=1 / 15)
    base = build_model(spec, seed=0).to(device).train()
    twin = build_model(spec, seed=1).to(device).train()
    opt = torch.optim.Adam(list(base.parameters()) + list(twin.parameters()), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 16, (batch, 1, 28, 28, 1), generator=g).float()
    x = x.expand(-1, -1, -1, -1, 5).to(device)
    y = torch.randint(0, 10, (batch,), generator=g).to(device)

    def step():
        terms = loss_terms(base(x), y, twin(x), None, "tna", 1e-4)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()

    for _ in range(warmup):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(batches):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return batch * batches / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--archs", default="conv-small,cifarnet")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)

    import torch
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device visible: run with --device cpu for a smoke test", file=sys.stderr)
        return 2
    from tna.models import dynamics
    impls = ["slayer", "torch"] + (["fused"] if args.device == "cpu" else [])
    hw = torch.cuda.get_device_name(0) if args.device == "cuda" else f"cpu x{torch.get_num_threads()}"
    rows = []
    for arch in args.archs.split(","):
        for impl in impls:
            if impl == "slayer" and args.device == "cuda" and not dynamics.slayer_jit_available():
                rows.append({"arch": arch, "impl": impl, "samples_per_s": None,
                             "note": "slayer's CUDA JIT does not build here"})
                continue
            rate = measure(arch, impl, args.device, args.batch_size, args.batches, args.warmup)
            goal = GOALS.get(arch)
            rows.append({"arch": arch, "impl": impl, "samples_per_s": round(rate, 1),
                         "goal": goal, "ratio_to_goal": round(rate / goal, 3) if goal else None})
            print(f"{arch:<11} {impl:<7} {rate:10,.0f} TNA samples/s  (goal {goal:,}: "
                  f"{rate / goal:.2f}x) on {hw}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"hardware": hw, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
