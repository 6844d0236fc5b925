"""`BenchConfig`: the grid that `tna bench` trains, deploys and tabulates."""
from __future__ import annotations

from dataclasses import dataclass, field

from tna import slurm
from tna.config import check_int
from tna.errors import TnaError
from tna.train import methods as train_methods
from tna.train.config import WEIGHT_MODES

TEACHERS = ("single-fp", "tna-twin")
EXECUTORS = ("local", "slurm")
SLURM_KEYS = slurm.KEYS
GRID_KEYS = ("method", "weights", "seed", "out", "resume", "teacher", "progress")   # per cell


@dataclass(frozen=True)
class BenchConfig:
    # the grid: every method x weight mode x seed, and every alpha for methods that use one
    preset: str | None = None         # training config (name or YAML) every cell starts from
    train: dict = field(default_factory=dict)   # TrainConfig keys over the preset (epochs: 8)
    methods: list = field(default_factory=lambda: ["single", "tna"])   # --method names (tna+self-distill too) or names of `variants`
    variants: dict = field(default_factory=dict)   # name -> {method: M, TrainConfig keys...}: a method with its own options, e.g. kd-kl: {method: kd, kd_loss: kl}
    weights: list | dict = field(default_factory=lambda: ["fp", "ternary"])   # every method's, or {method: [modes]} per method
    seeds: int | list = 3             # a count (0..N-1) or a list of seeds
    alphas: list | None = None        # methods whose loss uses alpha (tna, kd-ce); None = the training config's alpha
    teacher: str = "single-fp"        # teacher of methods with one (kd, kd-ce): the grid's single fp net of
                                      # the same seed, or the twin of its tna cell (same weights and alpha)
    # how to run it
    jobs: int = 1                     # cells at once: processes on CPU, several cells on one GPU
    deploy_limit: int | None = None   # deployed accuracy on the first N test samples (None: all)
    activity_samples: int = 200       # test samples for spikes and synaptic ops per inference
    out: str = "runs/bench"           # the bench folder: one folder per cell, results.csv, tables.md
    note: str = ""                    # printed at the top of tables.md (e.g. that a preset is a smoke test)
    reuse: str | None = None          # another bench folder of the same training settings: its finished cells of this grid are copied, not trained again
    progress: bool = True
    force: bool = False               # take over the locks of cells another process seems to run (after a crash on another host)
    executor: str = "local"           # local: here, `jobs` at a time | slurm: one SLURM job array task per cell (sbatch)
    slurm: dict = field(default_factory=dict)   # sbatch options: partition, time, cpus (per task), mem, gpus, throttle (array tasks at once), account, extra (list of raw sbatch flags)

    def __post_init__(self):
        def bad(key, what):
            raise TnaError(f"{key} = {getattr(self, key)!r}: {what}")

        for key, options in (("methods", tuple(train_methods.METHODS)), ("weights", WEIGHT_MODES)):
            lists = ([self.weights] if not isinstance(self.weights, dict) else
                     list(self.weights.values())) if key == "weights" else [self.methods]
            for v in lists:
                if not isinstance(v, list) or not v or any(not isinstance(m, str) for m in v) \
                        or (key == "weights" and any(m not in options for m in v)):
                    bad(key, f"a non-empty list of {', '.join(options)}"
                        + (" (or one per method: {method: [...]})" if key == "weights" else ""))
                if len(set(v)) != len(v):
                    bad(key, "lists a value twice")
        if isinstance(self.weights, dict) and not set(self.methods) <= set(self.weights):
            bad("weights", f"give weight modes for every method "
                           f"({', '.join(m for m in self.methods if m not in self.weights)})")
        if not isinstance(self.variants, dict):
            bad("variants", "a mapping of names to {method: M, training keys...}")
        for name, v in self.variants.items():
            if not isinstance(v, dict) or not isinstance(v.get("method"), str):
                raise TnaError(f"variants: {name}: give its method (method: M) and the training "
                               f"keys it changes")
            if name in train_methods.METHODS or train_methods.base.SEP in str(name):
                raise TnaError(f"variants: {name!r} is a method's name or holds "
                               f"'{train_methods.base.SEP}'; give the variant a name of its own")
            grid = [k for k in v if k != "method" and k.replace("-", "_") in GRID_KEYS]
            if grid:
                raise TnaError(f"variants: {name}: {grid[0]!r} is set per cell by the grid")
        for m in self.methods:            # registered methods, their a+b, or variants
            try:
                train_methods.parse_method(self.method_of(m))
            except TnaError as e:
                bad("methods", str(e))
        if self.teacher not in TEACHERS:
            bad("teacher", f"choose one of {', '.join(TEACHERS)}")
        taught = [m for m in self.methods
                  if train_methods.extra_net(self.method_of(m)) == "teacher"]
        if taught:
            baseline = self.teacher == "single-fp"
            need = train_methods.base.with_role("baseline" if baseline else "main")
            if need not in self.methods or (baseline and "fp" not in self.weights_of(need)):
                bad("methods", f"the teacher {self.teacher} of {', '.join(taught)}: its cells "
                               f"need the '{need}' method{' with fp weights' if baseline else ''}"
                               f" in the grid")
        if isinstance(self.seeds, bool) or (isinstance(self.seeds, int) and self.seeds < 1):
            bad("seeds", "a count ≥ 1 (3: seeds 0, 1, 2) or a list of seeds (--seeds 0, for "
                         "seed 0 alone)")
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
        if self.executor not in EXECUTORS:
            bad("executor", f"choose one of {', '.join(EXECUTORS)}")
        if not isinstance(self.slurm, dict) or set(self.slurm) - set(SLURM_KEYS):
            bad("slurm", f"a mapping of {', '.join(SLURM_KEYS)}")
        for key in GRID_KEYS:
            if key in self.train or key.replace("_", "-") in self.train:
                raise TnaError(f"train: {key!r} is set per cell by the grid; use the bench's "
                               f"own keys (methods, weights, seeds, teacher, out)")

    def weights_of(self, method: str) -> list:
        """The weight modes of `method`'s cells."""
        return self.weights[method] if isinstance(self.weights, dict) else self.weights

    def method_of(self, name: str) -> str:
        """The training method of grid name `name`: a variant's method, else the name."""
        return self.variants[name]["method"] if name in self.variants else name

    def options_of(self, name: str) -> dict:
        """The training keys a variant sets (empty for a plain method)."""
        return {k.replace("-", "_"): v for k, v in self.variants.get(name, {}).items()
                if k != "method"}

    @property
    def seed_list(self) -> list:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)
