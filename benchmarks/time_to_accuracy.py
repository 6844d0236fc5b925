"""Time to accuracy: train a preset, record the base's test accuracy against training time,
then export the result and measure the deployed net on the whole test split.

    .venv/bin/python benchmarks/time_to_accuracy.py --config fmnist-cpu --out runs/tta-cpu
    .venv/bin/python benchmarks/time_to_accuracy.py --config fmnist-gpu --device cuda --out runs/tta-gpu

After every epoch the base is evaluated on the full test split (that evaluation is not counted
as training time). At the end the best checkpoint is exported (`tna export`, ternary when the
preset trains ternary) and run with `--compare reference,emulator` on all test samples: the
final number is the deployed net's accuracy, and the parity verdict comes with it.

Writes to --out: the run folder (run/), curve.csv (epoch, minutes, test accuracy, phase),
curve.png, model.net, parity.json and summary.json. Goals (the issue "Accurate by default"):
Fashion-MNIST TNA T-SNN >= 90% within 60 minutes on a 2-core CPU, >= 94% on one GPU.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path

GOALS = {"cpu": (90.0, 60.0), "cuda": (94.0, None)}   # accuracy %, minutes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="fmnist-cpu", help="preset name or YAML path")
    ap.add_argument("--out", default="runs/tta")
    ap.add_argument("--device", default=None, help="cpu | cuda (default: the preset's)")
    ap.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    ap.add_argument("--ternary-after", type=int, default=None)
    ap.add_argument("--train-limit", type=int, default=None, help="smoke tests only")
    ap.add_argument("--limit", type=int, default=None, help="smoke tests only: cap every split")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args(argv)

    import torch

    from tna.config import from_dict, load_yaml
    from tna.deploy import RunConfig, run
    from tna.export import ExportConfig, export
    from tna.train import TrainConfig, train
    from tna.train.loop import evaluate

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = from_dict(TrainConfig, load_yaml(args.config), where=args.config)
    over = {k: v for k, v in (("device", args.device), ("epochs", args.epochs),
                              ("ternary_after", args.ternary_after),
                              ("train_limit", args.train_limit), ("limit", args.limit),
                              ("data_dir", args.data_dir)) if v is not None}
    cfg = dataclasses.replace(cfg, **over, out=str(out / "run"), progress=False)

    from tna.data import load_data
    from tna.train.loop import data_config
    test_split = load_data(data_config(cfg), batch_size=cfg.batch_size,   # as training sees it
                           eval_batch_size=cfg.eval_batch_size).test

    rows: list[dict] = []
    clock = {"train": 0.0, "mark": time.time()}

    def on_epoch(model, row):
        clock["train"] += time.time() - clock["mark"]          # training time only
        acc = evaluate(model, test_split, cfg.device)
        rows.append({"epoch": row["epoch"], "minutes": round(clock["train"] / 60, 3),
                     "test_acc": round(acc, 2), "val_acc": row.get("val_acc"),
                     "phase": cfg.weights if row["compressed"] else "fp"})
        print(f"[tta] epoch {row['epoch']}: {clock['train'] / 60:.1f} min, base test "
              f"{acc:.2f}%", file=sys.stderr, flush=True)
        write_curve(rows, out)
        clock["mark"] = time.time()

    best = train(cfg, on_epoch=on_epoch)
    net = export(best, ExportConfig(out=str(out / "model.net"), progress=False,
                                    ternary=cfg.weights == "ternary"))
    result = run(net, RunConfig(backend="emulator", compare="reference,emulator",
                                limit=args.limit, progress=False))
    (out / "parity.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    deployed = result.accuracy.get("emulator")
    goal_acc, goal_min = GOALS["cuda" if cfg.device == "cuda" else "cpu"]
    summary = {
        "config": args.config, "device": cfg.device,
        "hardware": (torch.cuda.get_device_name(0) if cfg.device == "cuda"
                     else f"{platform.processor() or platform.machine()}, "
                          f"{torch.get_num_threads()} threads"),
        "epochs": cfg.epochs, "train_minutes": round(clock["train"] / 60, 2),
        "best_base_test_acc": max(r["test_acc"] for r in rows),
        "final_base_test_acc": rows[-1]["test_acc"],
        "deployed_test_samples": result.samples,
        "deployed_acc_reference": result.accuracy.get("reference"),
        "deployed_acc_emulator": deployed, "parity_holds": result.ok,
        "goal": {"accuracy": goal_acc, "minutes": goal_min,
                 "met": bool(deployed is not None and deployed >= goal_acc and result.ok
                             and (goal_min is None or clock["train"] / 60 <= goal_min))},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    print(f"deployed ({'ternary' if cfg.weights == 'ternary' else cfg.weights}) net: "
          f"{deployed:.2f}% on {result.samples} test samples (emulator = reference: "
          f"{'exact' if result.ok else 'NOT exact'}), after {clock['train'] / 60:.1f} min of "
          f"training; goal {goal_acc}%" + (f" within {goal_min:.0f} min" if goal_min else "")
          + (": met" if summary["goal"]["met"] else ": not met"))
    return 0


def write_curve(rows, out: Path) -> None:
    with open(out / "curve.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for phase, marker in (("fp", "o"), ("ternary", "s"), ("binary", "^")):
        pts = [(r["minutes"], r["test_acc"]) for r in rows if r["phase"] == phase]
        if pts:
            ax.plot(*zip(*pts), marker=marker, label=f"base, {phase} weights")
    ax.set_xlabel("training time (minutes)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "curve.png", dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
