"""`BenchConfig`: the grid that `tna bench` trains, deploys and tabulates."""
from __future__ import annotations

from dataclasses import dataclass, field

from tna.config import check_int
from tna.errors import TnaError
from tna.train.config import METHODS, WEIGHT_MODES

TEACHERS = ("single-fp", "tna-twin")


@dataclass(frozen=True)
class BenchConfig:
    # the grid: every method x weight mode x seed, and every alpha for methods that use one
    preset: str | None = None         # training config (name or YAML) every cell starts from
    train: dict = field(default_factory=dict)   # TrainConfig keys over the preset (epochs: 8)
    methods: list = field(default_factory=lambda: ["single", "tna"])
    weights: list = field(default_factory=lambda: ["fp", "ternary"])
    seeds: int | list = 3             # a count (0..N-1) or a list of seeds
    alphas: list | None = None        # tna / kd-ce only; None = the training config's alpha
    teacher: str = "single-fp"        # kd / kd-ce teacher: the grid's single fp net of the same
                                      # seed, or the twin of its tna cell (same weights and alpha)
    # how to run it
    jobs: int = 1                     # cells at once: processes on CPU, several cells on one GPU
    deploy_limit: int | None = None   # deployed accuracy on the first N test samples (None: all)
    activity_samples: int = 200       # test samples for spikes and synaptic ops per inference
    out: str = "runs/bench"           # the bench folder: one folder per cell, results.csv, tables.md
    note: str = ""                    # printed at the top of tables.md (e.g. that a preset is a smoke test)
    progress: bool = True

    def __post_init__(self):
        def bad(key, what):
            raise TnaError(f"{key} = {getattr(self, key)!r}: {what}")

        for key, options in (("methods", METHODS), ("weights", WEIGHT_MODES)):
            v = getattr(self, key)
            if not isinstance(v, list) or not v or any(m not in options for m in v):
                bad(key, f"a non-empty list of {', '.join(options)}")
            if len(set(v)) != len(v):
                bad(key, "lists a value twice")
        if self.teacher not in TEACHERS:
            bad("teacher", f"choose one of {', '.join(TEACHERS)}")
        if any(m in ("kd", "kd-ce") for m in self.methods):
            need = "single" if self.teacher == "single-fp" else "tna"
            if need not in self.methods or (need == "single" and "fp" not in self.weights):
                bad("methods", f"kd and kd-ce with teacher {self.teacher} need the "
                               f"'{need}' method{' with fp weights' if need == 'single' else ''}"
                               f" in the grid")
        if isinstance(self.seeds, bool) or (isinstance(self.seeds, int) and self.seeds < 1):
            bad("seeds", "a count ≥ 1 or a list of seeds")
        if isinstance(self.seeds, list) and (not self.seeds or len(set(self.seeds)) != len(
                self.seeds) or any(isinstance(s, bool) or not isinstance(s, int) or s < 0
                                   for s in self.seeds)):
            bad("seeds", "a list of different whole numbers ≥ 0")
        if self.alphas is not None and (not self.alphas or any(
                isinstance(a, bool) or not isinstance(a, (int, float)) or a < 0
                for a in self.alphas)):
            bad("alphas", "a non-empty list of numbers ≥ 0")
        for key in ("jobs", "activity_samples"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                bad(key, "must be a whole number ≥ 1")
        check_int("deploy_limit", self.deploy_limit, 1, allow_none=True)
        for key in ("method", "weights", "seed", "out", "resume", "teacher", "progress"):
            if key in self.train or key.replace("_", "-") in self.train:
                raise TnaError(f"train: {key!r} is set per cell by the grid; use the bench's "
                               f"own keys (methods, weights, seeds, teacher, out)")

    @property
    def seed_list(self) -> list:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)
