"""The cells of a bench and how one cell runs: `tna train`, `tna export`, then the deployed
accuracy from the emulator (checked against the slayer reference) and the cost of the file.

A cell is finished when its folder holds cell.json; a killed cell resumes its training from
run/checkpoint.pt (bit-exact, as `tna train --resume`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from tna import cluster
from tna.atomic import write_text
from tna.bench.config import BenchConfig
from tna.bench.lock import cell_lock
from tna.errors import TnaError
from tna.train import methods as train_methods


def has_teacher(method: str) -> bool:
    """Whether cells of `method` learn from a teacher cell (kd, kd-ce): they run after it."""
    return train_methods.extra_net(method) == "teacher"


@dataclass(frozen=True)
class Cell:
    method: str                      # a registered method, a+b (tna.train.methods) or a variant
    weights: str
    seed: int
    alpha: float | None = None       # None: the method has no alpha
    trains: str | None = field(default=None, compare=False)   # a variant's method (else None)

    @property
    def train_method(self) -> str:
        return self.trains or self.method

    @property
    def name(self) -> str:
        a = f"-a{self.alpha:g}" if self.alpha is not None else ""
        return f"{self.method}-{self.weights}{a}-s{self.seed}"


def base_train_dict(cfg: BenchConfig) -> dict:
    """The training config every cell starts from: the preset, then `cfg.train` over it."""
    from tna.config import load_yaml
    d = dict(load_yaml(cfg.preset)) if cfg.preset else {}
    d.update({k.replace("-", "_"): v for k, v in cfg.train.items()})
    return d


def grid_alphas(cfg: BenchConfig) -> list:
    """The alphas of cells whose loss uses alpha: the bench's, else the training config's."""
    return [float(a) for a in (cfg.alphas or [base_train_dict(cfg).get("alpha", 1e-4)])]


def cells(cfg: BenchConfig) -> list:
    """Every cell of the grid, teachers before the kd cells that need them."""
    alphas = grid_alphas(cfg)
    out = []
    for method in sorted(cfg.methods, key=lambda m: has_teacher(cfg.method_of(m))):
        trains = cfg.method_of(method)
        for weights in cfg.weights_of(method):
            for alpha in (alphas if train_methods.uses_alpha(trains) else [None]):
                for seed in cfg.seed_list:
                    out.append(Cell(method, weights, seed, alpha,
                                    trains if trains != method else None))
    return out


def teacher_cell(cell: Cell, cfg: BenchConfig) -> Cell:
    """The grid cell whose network teaches a kd / kd-ce cell (see BenchConfig.teacher): the
    baseline method's fp cell, or the main method's (tna's) cell, whose twin teaches."""
    if cfg.teacher == "single-fp":
        return Cell(train_methods.base.with_role("baseline"), "fp", cell.seed)
    alphas = grid_alphas(cfg)
    alpha = cell.alpha if cell.alpha in alphas else alphas[0]
    return Cell(train_methods.base.with_role("main"), cell.weights, cell.seed, alpha)


def train_config(cell: Cell, cfg: BenchConfig, threads: int = 0):
    from tna.config import from_dict
    from tna.train import TrainConfig
    d = base_train_dict(cfg)
    d.update(cfg.options_of(cell.method))
    d.update(method=cell.train_method, weights=cell.weights, seed=cell.seed, progress=False,
             out=str(Path(cfg.out) / cell.name / "run"))
    if cell.alpha is not None:
        d["alpha"] = cell.alpha
    if threads and not d.get("threads"):
        d["threads"] = threads
    if has_teacher(cell.train_method):
        d["teacher"] = str(teacher_path(cell, cfg))
    return from_dict(TrainConfig, d, where=f"bench cell {cell.name}")


def teacher_path(cell: Cell, cfg: BenchConfig) -> Path:
    t = teacher_cell(cell, cfg)
    best = Path(cfg.out) / t.name / "run" / "best.pt"
    return best if cfg.teacher == "single-fp" else Path(cfg.out) / t.name / "twin.pt"


def _write_twin(tna_best: Path, out: Path) -> None:
    """The twin of a tna checkpoint as a checkpoint of its own (full precision)."""
    from tna import checkpoint as ckpt
    state = ckpt.load(tna_best)
    state = {k: v for k, v in state.items() if k not in ("format", "version", "path")}
    ckpt.save({**state, "model": state["twin"], "twin": None, "compression": None}, out)


class LoadMonitor:
    """The machine's 1-minute load average, sampled every `seconds` while a cell runs: cell
    minutes are comparable only between cells that ran under the same load."""

    def __init__(self, seconds: float = 30.0):
        import threading
        self.samples: list = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(seconds,), daemon=True)

    def _sample(self, seconds: float) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(seconds):
                return

    def __enter__(self) -> "LoadMonitor":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        s = self.samples or [0.0]
        return {"load_mean": round(sum(s) / len(s), 2), "load_max": round(max(s), 2),
                "cores": os.cpu_count()}   # the machine's: the load average is the machine's


def run_cell(cell: Cell, cfg: BenchConfig, threads: int = 0) -> dict:
    """Train, export and deploy one cell; returns (and writes to cell.json) its record."""
    folder = Path(cfg.out) / cell.name
    with cell_lock(folder, cell.name, cfg.force):     # CellBusy: another process runs it
        done = load_record(cell, cfg.out)             # finished by another process meanwhile
        if done is not None:
            return done
        if has_teacher(cell.train_method):
            t = teacher_cell(cell, cfg)
            if load_record(t, cfg.out) is None:
                raise TnaError(f"cell {cell.name}: its teacher {t.name} has not finished; run "
                               f"that cell first")
        with open(folder / "log.txt", "a") as log, contextlib.redirect_stderr(log), \
                contextlib.redirect_stdout(log), LoadMonitor() as load:
            return _run_cell(cell, cfg, folder, threads, load)


def _run_cell(cell: Cell, cfg: BenchConfig, folder: Path, threads: int,
              load: LoadMonitor) -> dict:
    import torch

    from tna.deploy import RunConfig, run
    from tna.deploy.inspect import costs
    from tna.deploy.runner import accuracy_by_timesteps
    from tna.export import ExportConfig, export
    from tna.train import train

    if threads:
        torch.set_num_threads(threads)
    t0 = time.time()
    if has_teacher(cell.train_method) and cfg.teacher == "tna-twin":
        twin = teacher_path(cell, cfg)
        if not twin.exists():
            _write_twin(Path(cfg.out) / teacher_cell(cell, cfg).name / "run" / "best.pt", twin)
    tcfg = train_config(cell, cfg, threads)
    run_dir = Path(tcfg.out)
    if (run_dir / "result.json").exists():
        best = run_dir / "best.pt"          # trained before the bench was stopped
    else:
        if run_dir.exists() and not (run_dir / "checkpoint.pt").exists():
            shutil.rmtree(run_dir)          # killed before its first checkpoint: start again
        resume = (run_dir / "checkpoint.pt").exists()
        best = train(dataclasses.replace(tcfg, resume=resume))
    result = json.loads((run_dir / "result.json").read_text())
    net = export(best, ExportConfig(out=str(folder / "model.net"), limit=cfg.deploy_limit,
                                    progress=False, force=True))   # the cell's own file
    deployed = run(net, RunConfig(backend="emulator", compare="reference,emulator",
                                  limit=cfg.deploy_limit, progress=False))
    by_t = accuracy_by_timesteps(deployed)
    cost = costs(net, measure=True, limit=cfg.activity_samples)
    metrics = read_metrics(run_dir)
    record = {
        "cell": cell.name, "method": cell.method, "train_method": cell.train_method,
        "weights": cell.weights, "seed": cell.seed, "alpha": cell.alpha,
        "teacher": teacher_cell(cell, cfg).name if has_teacher(cell.train_method) else None,
        "dataset": tcfg.dataset, "arch": tcfg.arch, "epochs": tcfg.epochs,
        "ternary_after": tcfg.compress_after if cell.weights != "fp" else None,
        "torch_test_acc": round(result["test_acc"], 2),
        "best_val_acc": round(result["best_val_acc"], 2) if result.get("best_val_acc") else None,
        "deployed_acc": deployed.accuracy.get("emulator"),
        "reference_acc": deployed.accuracy.get("reference"),
        "deployed_samples": deployed.samples, "parity": deployed.ok,
        # deployed accuracy at T' = 1..T steps (emulator, tna run --timesteps), '/'-separated
        "deployed_acc_by_t": "/".join(f"{by_t[t]:.2f}" for t in sorted(by_t)),
        "options": cfg.options_of(cell.method) or None,     # a variant's training keys
        "train_minutes": round(sum(m["train_seconds"] for m in metrics) / 60, 2),
        "epoch_seconds_median": epoch_seconds_median(metrics),
        "cell_minutes": round((time.time() - t0) / 60, 2),
        "hardware": hardware(tcfg.device),
        **load.summary(),       # this session's part of the cell (a resumed cell: since resume)
        "spikes_per_inference": round(cost["spikes"], 1),
        "synops_per_inference": round(cost["synops"], 1),
        "weight_kib_netx": round(cost["mem_bits"] / 8 / 1024, 2),
        "weight_kib_needed": round(cost["needed_bits"] / 8 / 1024, 2),
        **loihi2_columns(cost["loihi2"]),
        "warnings": len(result.get("warnings", [])),
        # who ran it: host, and the SLURM job and array task where there is one
        "host": cluster.host(), **cluster.job(),
    }
    write_text(folder / "cell.json", json.dumps(record, indent=2) + "\n")
    return record


def loihi2_columns(est) -> dict:
    """The cell's Loihi 2 estimate (tna.estimate): cores, chips, dynamic energy per inference
    (µJ, low and high end)."""
    energy = est.cost.energy_j if est.cost is not None else (None, None)
    return {"loihi2_cores": est.cores if not est.problems else None,
            "loihi2_chips": est.chips if not est.problems else None,
            "loihi2_uj_low": None if energy[0] is None else round(energy[0] * 1e6, 2),
            "loihi2_uj_high": None if energy[1] is None else round(energy[1] * 1e6, 2)}


def hardware(device: str) -> str:
    import torch
    if device == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{platform.machine()}, {torch.get_num_threads()} threads"


def read_metrics(folder: Path) -> list:
    """A run's metrics.jsonl, one dict per epoch ([] where there is none)."""
    path = Path(folder) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def epoch_seconds_median(metrics: list) -> float | None:
    """The median training seconds per epoch: an epoch slowed by another job on the machine
    moves the mean minutes per epoch but not the median."""
    import statistics
    seconds = [m["train_seconds"] for m in metrics if "train_seconds" in m]
    return round(statistics.median(seconds), 1) if seconds else None


def load_record(cell: Cell, out) -> dict | None:
    path = Path(out) / cell.name / "cell.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        raise TnaError(f"{path} is damaged; delete it to run the cell again") from None


def log_tail(cell: Cell, out, lines: int = 3) -> str:
    path = Path(out) / cell.name / "log.txt"
    if not path.exists():
        return ""
    return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])

