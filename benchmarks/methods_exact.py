"""Every training method deploys exactly: each new method (and learned decays) trained briefly
on Fashion-MNIST, exported, then run reference vs emulator on all 10,000 test images and
reference vs Lava's simulator on the first 100. Prints a table; --md writes it as Markdown.

    .venv/bin/python benchmarks/methods_exact.py --out runs/methods-exact \
        --md results/methods-exact.md

A short budget (default 2 epochs on 6,000 training images, ternary in the second): the point is
that what each method trains is what Loihi runs, spike for spike, not its accuracy (the bench
preset fmnist-cpu-methods measures that at full budget).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

TNA = str(Path(sys.executable).with_name("tna"))
# name -> tna train flags beyond the common ones
RUNS = {
    "self-distill": ["--method", "self-distill"],
    "tasg": ["--method", "tasg"],
    "tna+self-distill": ["--method", "tna+self-distill"],
    "tna+tasg": ["--method", "tna+tasg"],
    "learned decays": ["--method", "single", "--learn-decays"],
    "kd-kl binary": ["--method", "kd", "--kd-loss", "kl", "--weights", "binary"],
}


def sh(*args) -> subprocess.CompletedProcess:
    p = subprocess.run([TNA, *args], capture_output=True, text=True)
    if p.returncode not in (0, 1):
        raise SystemExit(f"tna {' '.join(args)} failed:\n{p.stderr[-3000:]}")
    return p


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/methods-exact")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--train-limit", type=int, default=6000)
    ap.add_argument("--lava-samples", type=int, default=100)
    ap.add_argument("--md", default=None, help="write the table as Markdown here")
    args = ap.parse_args(argv)
    out = Path(args.out)
    common = ["--config", "fmnist-cpu", "--epochs", str(args.epochs), "--ternary-after",
              str(args.epochs - 1), "--train-limit", str(args.train_limit), "--no-progress"]
    teacher = out / "teacher"
    if not (teacher / "result.json").exists():
        sh("train", *common, "--method", "single", "--weights", "fp", "--out", str(teacher))
    rows = []
    for name, flags in RUNS.items():
        run = out / name.replace(" ", "-").replace("+", "-")
        t0 = time.time()
        if not (run / "result.json").exists():
            extra = ["--teacher", str(teacher)] if "kd" in flags else []
            sh("train", *common, *flags, *extra, "--out", str(run))
        minutes = (time.time() - t0) / 60
        net = run / "model.net"
        sh("export", str(run), "--out", str(net), "--force")
        emu, lava = run / "emulator.json", run / "lava.json"
        sh("run", str(net), "--backend", "emulator", "--report", str(emu), "--no-progress")
        sh("run", str(net), "--backend", "lava-sim", "--limit", str(args.lava_samples),
           "--report", str(lava), "--no-progress")
        e, la = json.loads(emu.read_text()), json.loads(lava.read_text())
        torch_acc = json.loads((run / "result.json").read_text())["test_acc"]
        row = (name, f"{torch_acc:.2f}", f"{e['accuracy']['emulator']:.2f}",
               f"{'exact' if e['parity_holds'] else 'NOT exact'} ({e['samples']})",
               f"{'exact' if la['parity_holds'] else 'NOT exact'} ({la['samples']})",
               f"{minutes:.1f}")
        rows.append(row)
        print(" | ".join(row), flush=True)
    head = ("method", "PyTorch test %", "deployed % (emulator)", "reference = emulator",
            "reference = Lava sim", "training min")
    md = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    print("\n".join(md))
    if args.md:
        Path(args.md).parent.mkdir(parents=True, exist_ok=True)
        Path(args.md).write_text(
            f"# Every method deploys exactly\n\n`benchmarks/methods_exact.py`: Fashion-MNIST, "
            f"fmnist-cpu recipe cut to {args.epochs} epochs (ternary in the last) on "
            f"{args.train_limit} training images; deployed on all 10,000 test images (emulator, "
            f"checked against the slayer reference) and on the first {args.lava_samples} with "
            f"Lava's simulator. Accuracies at this budget say nothing about the methods' "
            f"merit (the bench preset fmnist-cpu-methods measures that).\n\n"
            + "\n".join(md) + "\n")
    return 0 if all("NOT" not in r[3] + r[4] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
