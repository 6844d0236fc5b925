"""`tna demo` / `make demo`: the whole pipeline on real data in a few CPU minutes.

1. train a base + twin with TNA, ternary in the last epoch (Fashion-MNIST when the Debian
   package is installed, else scikit-learn digits);
2. export it ternary to a netx HDF5 file;
3. check the full test set: slayer reference vs tna's emulator, bit for bit;
4. check a sample on the real Lava simulator (reference vs emulator vs lava-sim).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tna.console import count, log
from tna.errors import TnaError

FMNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


def demo_train_config(out: Path, epochs: int | None, progress: bool = True):
    from tna.train.config import TrainConfig
    if (FMNIST_DIR / "train-images-idx3-ubyte.gz").is_file():
        e = epochs or 3
        # 24k images x 3 epochs keeps the demo near 5 minutes; the defaults are tuned for it
        # (docs/accuracy.md).
        return TrainConfig(dataset="fashion-mnist", epochs=e,
                           ternary_after=max(e - 1, 1) if e > 1 else 0,
                           train_limit=24000, out=str(out / "train"), progress=progress)
    log(f"note: Fashion-MNIST is not installed ({FMNIST_DIR}); using scikit-learn digits. "
         f"`apt-get install dataset-fashion-mnist` gives the full demo.")
    e = epochs or 8
    return TrainConfig(dataset="digits", arch="mlp", epochs=e,
                       ternary_after=max(e // 2, 1) if e > 1 else 0, out=str(out / "train"),
                       progress=progress)


def demo(out="runs/demo", epochs: int | None = None, lava_samples: int = 100,
         progress: bool = True) -> bool:
    from tna.deploy import RunConfig, run
    from tna.export import ExportConfig, export
    from tna.train import train

    out = Path(out)
    if (out / "train").exists():
        if not (out / "train" / "config.yaml").exists():
            raise TnaError(f"{out / 'train'} exists and is not a tna run; choose another --out")
        shutil.rmtree(out / "train")          # the demo's own previous run
    cfg = demo_train_config(out, epochs, progress)
    log(f"== 1/4 train: {cfg.method} on {cfg.dataset}, {cfg.arch}, {count(cfg.epochs, 'epoch')}, "
         f"{cfg.weights} from epoch {cfg.compress_after + 1}")
    best = train(cfg)

    log("== 2/4 export ternary netx HDF5")
    net = export(best, ExportConfig(out=str(out / "model.net"), ternary=True, force=True,
                                    progress=progress))

    log("== 3/4 full test set: slayer reference vs tna emulator")
    full = run(net, RunConfig(backend="emulator", compare="reference,emulator",
                              report=str(out / "parity_emulator.json"), progress=progress))
    print(full.summary(), flush=True)

    log(f"== 4/4 {lava_samples} test samples on the Lava simulator (lava-nc's own fixed_pt "
         f"models)")
    # A fresh process: Lava forks its workers, and forking after training (live torch thread
    # pools) can hang them.
    cmd = [sys.executable, "-m", "tna.cli", "run", str(net), "--backend", "lava-sim",
           "--compare", "reference,emulator,lava-sim", "--lava-models", "stock",
           "--limit", str(lava_samples), "--report", str(out / "parity_lava.json")]
    if not progress:
        cmd.append("--no-progress")
    lava_ok = subprocess.run(cmd).returncode == 0
    ok = full.ok and lava_ok
    print(f"\ndemo {'passed' if ok else 'FAILED'}: run folder {cfg.out}, net {net}, reports in "
          f"{out}", flush=True)
    return ok
