"""Training speed: method single vs tna (base + twin), and tna's ternary phase vs its fp phase.

Net: the `conv-small` preset (16c3s2-32c3s2-64c3-256-out), T = 5, direct 4-bit input, on
Fashion-MNIST when /usr/share/datasets/fashion-mnist exists, else scikit-learn digits. Each setup
is tna's own training state (`tna.train.loop.Run`: data loader with augmentation, model(s),
Adam) stepped exactly as `train_epoch` steps it: next batch, forward (base, and twin for tna),
loss, backward, optimizer step.

    .venv/bin/python benchmarks/train_speed.py [--batches 12] [--warmup 2] [--rounds 3] [--json]

Setups: single (fp), tna (fp phase), tna (ternary phase: hidden layers compressed, Eq. 6).
Every setup first runs `--warmup` batches, then `--batches` timed batches of `--batch-size`
samples split over `--rounds` rounds; the setups take turns within each round (in a rotating
order) so that load from other processes hits all of them alike.

Goals: tna time per sample <= 2.1x single's; tna ternary phase <= 1.05x its fp phase.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

FMNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
GOAL_TNA_OVER_SINGLE = 2.1      # time per sample, tna / single
GOAL_TERNARY_OVER_FP = 1.05     # time per sample, tna ternary phase / tna fp phase


class Setup:
    """One training state and its batch stream; `step()` is one training step."""

    def __init__(self, name, cfg, compress):
        from tna.train.loop import Run, compress
        self.name = name
        self.run = Run(cfg)
        if compress:
            self.run.compression = compress(self.run.model, cfg)
        self.run.model.train()
        if self.run.twin is not None:
            self.run.twin.train()
        self.batches = self._stream()
        self.seconds: list[float] = []       # per timed round
        self.samples: list[int] = []

    def _stream(self):
        epoch = 0
        while True:
            yield from self.run.data.train.batches(epoch)
            epoch += 1

    def step(self) -> int:
        from tna.train.loop import loss_terms
        run, cfg = self.run, self.run.cfg
        x, y = next(self.batches)
        logits = run.model(x)
        twin_logits = run.twin(x) if run.twin is not None else None
        terms = loss_terms(logits, y, twin_logits, None, cfg.method, cfg.alpha)
        run.opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        run.opt.step()
        return len(y)

    def timed(self, n) -> None:
        t0 = time.perf_counter()
        seen = sum(self.step() for _ in range(n))
        self.seconds.append(time.perf_counter() - t0)
        self.samples.append(seen)

    @property
    def samples_per_s(self) -> float:
        return sum(self.samples) / sum(self.seconds)

    @property
    def ms_per_sample_median(self) -> float:
        return statistics.median(1000 * s / n for s, n in zip(self.seconds, self.samples))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=12, help="timed batches per setup")
    p.add_argument("--warmup", type=int, default=2, help="untimed batches per setup first")
    p.add_argument("--rounds", type=int, default=3, help="rounds the timed batches are split in")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--arch", default="conv-small")
    p.add_argument("--dataset", default=None, help="default: fashion-mnist if installed, "
                   "else digits")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args(argv)
    if args.batches < args.rounds or args.rounds < 1:
        p.error("--batches must be >= --rounds >= 1")

    import torch

    from tna.train.config import TrainConfig
    if args.threads:
        torch.set_num_threads(args.threads)
    dataset = args.dataset or ("fashion-mnist" if (FMNIST_DIR / "train-images-idx3-ubyte.gz")
                               .is_file() else "digits")
    common = dict(dataset=dataset, arch=args.arch, batch_size=args.batch_size, epochs=2,
                  ternary_after=1, progress=False, out=os.devnull)
    with contextlib.redirect_stdout(sys.stderr):    # lava-dl prints warnings on import
        setups = [
            Setup("single (fp)", TrainConfig(method="single", weights="fp", **common), False),
            Setup("tna (fp phase)", TrainConfig(method="tna", **common), False),
            Setup("tna (ternary phase)", TrainConfig(method="tna", **common), True),
        ]
    for s in setups:
        for _ in range(args.warmup):
            s.step()
    per_round = [args.batches // args.rounds + (i < args.batches % args.rounds)
                 for i in range(args.rounds)]
    for r, n in enumerate(per_round):
        for k in range(len(setups)):
            setups[(r + k) % len(setups)].timed(n)

    single, tna_fp, tna_t = setups
    ratio_tna = single.samples_per_s / tna_fp.samples_per_s
    ratio_t = tna_fp.samples_per_s / tna_t.samples_per_s
    result = {
        "dataset": dataset, "arch": args.arch, "batch_size": args.batch_size,
        "timed_batches": args.batches, "warmup_batches": args.warmup, "rounds": args.rounds,
        "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "setups": {s.name: {"samples_per_s": s.samples_per_s,
                            "ms_per_sample_median": s.ms_per_sample_median,
                            "seconds": s.seconds} for s in setups},
        "tna_over_single": ratio_tna, "ternary_over_fp": ratio_t,
        # the same ratios from each setup's median round: less sensitive to a burst of load
        "tna_over_single_median": tna_fp.ms_per_sample_median / single.ms_per_sample_median,
        "ternary_over_fp_median": tna_t.ms_per_sample_median / tna_fp.ms_per_sample_median,
        "goals": {"tna_over_single": GOAL_TNA_OVER_SINGLE,
                  "ternary_over_fp": GOAL_TERNARY_OVER_FP},
        "pass": {"tna_over_single": ratio_tna <= GOAL_TNA_OVER_SINGLE,
                 "ternary_over_fp": ratio_t <= GOAL_TERNARY_OVER_FP},
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"train speed: {args.arch} on {dataset}, batch {args.batch_size}, T=5, "
          f"{args.batches} timed batches per setup in {args.rounds} rounds after "
          f"{args.warmup} warm-up; torch threads {torch.get_num_threads()}, "
          f"load average {result['load_average_1min']:.1f} on {os.cpu_count()} cores")
    print(f"{'setup':<22}{'samples/s':>11}{'ms/sample':>11}{'(median round)':>16}")
    for s in setups:
        print(f"{s.name:<22}{s.samples_per_s:>11.1f}{1000 / s.samples_per_s:>11.2f}"
              f"{s.ms_per_sample_median:>16.2f}")
    print()
    print(f"{'check (time per sample)':<34}{'value':>8}{'goal':>10}  result"
          f"{'(median rounds)':>18}")
    for label, key, goal in (("tna / single", "tna_over_single", GOAL_TNA_OVER_SINGLE),
                             ("tna ternary phase / fp phase", "ternary_over_fp",
                              GOAL_TERNARY_OVER_FP)):
        value = result[key]
        print(f"{label:<34}{value:>8.3f}{'<= ' + format(goal, '.2f'):>10}  "
              f"{'PASS' if value <= goal else 'MISS'}{result[key + '_median']:>18.3f}")
    print("note: wall-clock times on a shared machine; other processes add noise to every "
          "number (see load average).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
