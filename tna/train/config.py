"""`TrainConfig`: everything `tna train` does is a function of this (and nothing else).

Every field is also a CLI flag (`--batch-size`) and a YAML key (`batch_size` or `batch-size`).
The defaults are a short run that works on a laptop CPU and are measured to train well at
small budgets (results/accuracy.md); the paper's exact settings are tna/configs/paper-*.yaml.

The training methods' own options (`--kd-loss`, `--sd-mode`, ...) are declared in their modules
(tna.train.methods) as frozen dataclasses; TrainConfig inherits them, so they are fields, flags
and keys like the rest.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from tna.errors import TnaError
from tna.train import methods as _methods

WEIGHT_MODES = ("fp", "ternary", "binary")
READOUTS = ("voltage", "spike")
LR_SCHEDULES = ("cosine", "exp")


# Runs saved before a field existed trained as tna did then, where that differs from today's
# default; TrainConfig.from_checkpoint fills the field so (the one place that says it).
OLD_RUN_DEFAULTS = {"ternary_scale": "one"}    # ±1 ternary weights, before power-of-two scales


# What may change when a run is resumed; anything else would not continue the same run.
RESUME_FREE = ("progress", "epochs", "threads", "device", "eval_batch_size")


@dataclass(frozen=True)
class TrainConfig(*reversed(_methods.option_classes())):   # options in registry order
    # what to train
    method: str = "tna"            # a registered method (tna train --help lists them: single, tna, kd, ...) or a+b: both losses summed (tna+self-distill)
    weights: str = "ternary"       # fp | ternary (Eq. 6) | binary, for the base's hidden layers
    teacher: str | None = None     # checkpoint (or run folder) of the kd / kd-ce teacher
    # data
    dataset: str = "fashion-mnist"  # fashion-mnist|mnist|digits|cifar10|cifar100|cifar100-coarse|cifar10-dvs|cifar10-dvs-64|cifar10-dvs-32|npz:PATH (docs/data.md)
    data_dir: str | None = None    # IDX folder; None = the data set's default place
    val_size: float = 0.1          # fraction (or count) of train held out for validation
    limit: int | None = None       # cap each split at N samples: quick runs and tests
    train_limit: int | None = None  # cap the train split only; val and test stay whole
    augment: bool = False          # random crop (+ h-flip where the data set allows) on train;
                                   # off: at short budgets it costs accuracy (docs/accuracy.md)
    crop_padding: int = 4          # pixels of padding for the random crop (the paper's 4); 0 = flips only
    encoding: str = "direct"       # direct: graded pixels each step (the paper) | rate: Bernoulli
    input_bits: int = 4            # direct input integers 0..2**bits-1, fed to Loihi as graded spikes
    # model
    arch: str = "conv-small"       # preset (mlp, conv-small, cifarnet) or spec like 16c3-32c3s2-256-10
    timesteps: int = 5             # T; the paper's 5
    threshold: float = 0.5         # slayer units; 0.5 keeps hidden layers alive at T = 5
    current_decay: float = 1.0     # fraction per step; 1.0: the current lasts one step (LIF-like)
    voltage_decay: float = 0.03    # fraction per step
    learn_decays: bool = False     # train each layer's current and voltage decay (from the two above; on Loihi's 1/4096 grid, clamped to [0, 1]): the deployable form of membrane potential smoothing (Ding et al., ICLR 2025)
    decay_lr: float = 1.0          # with --learn-decays: Adam's peak lr for the decays, in units of 1/4096 per step (the lr schedule applies)
    weight_scale: float = 4.0      # init scale of slayer weights
    dropout: float = 0.2           # on dense hidden layers (the paper's 0.2)
    readout: str = "voltage"       # voltage: sum of output v (the paper) | spike: spike count
    tau_grad: float = 0.02         # surrogate gradient width, relative to slayer's (1.0 = slayer)
    scale_grad: float = 10.0       # surrogate gradient height, relative to slayer's (1.0 = slayer)
    # optimisation
    epochs: int = 4                # the paper: 250
    batch_size: int = 64           # global: split over --nproc processes; the paper: 256
    eval_batch_size: int = 1000    # evaluation only; larger is faster, same result
    lr: float = 0.003              # Adam peak lr; the paper's 0.01 is unstable with CUBA blocks
    lr_schedule: str = "cosine"    # cosine: to 0 over the run | exp: lr * lr_gamma per epoch (paper)
    lr_gamma: float = 0.928        # exp schedule only: factor per epoch (the paper's 0.928)
    warmup: int = 0                # epochs of linear lr warm-up from lr/100 (helps deep nets)
    label_smoothing: float = 0.0   # PyTorch CE label smoothing on base and twin (0 = the paper)
    alpha: float = 1e-4            # weight of the logit MSE; the paper: 1e-4 F-MNIST, 1e-3 CIFAR
    delta: float = 0.1             # ternary threshold of Eq. 6, slayer weight units
    ternary_scale: str = "pow2"    # ternary/binary weights ±s: pow2 = a power of two near mean |w|
                                   # per layer (still 2 bits on Loihi) | one = ±1 (the paper)
    ternary_after: int | None = None   # epochs of full precision before compressing (the paper: 150 of 250); default: half the epochs, at least 1 (a 1-epoch run stays fp)
    seed: int = 0                  # base init, twin init (seed + 1), data order, dropout
    device: str = "cpu"            # cpu | cuda
    threads: int = 0               # torch CPU threads; 0 = torch's default, capped at the CPUs allocated (SLURM, taskset)
    # output
    out: str = "runs/train"        # run folder: checkpoint.pt, best.pt, metrics.jsonl, curves.png
    resume: bool = False           # continue from out/checkpoint.pt
    progress: bool = True          # tqdm bars

    def __post_init__(self):
        def bad(key, value, what):
            raise TnaError(f"{key} = {value!r}: {what}")

        _methods.parse_method(self.method)   # a registered method, or a valid a+b
        for key, options in (("weights", WEIGHT_MODES),
                             ("readout", READOUTS), ("encoding", ("direct", "rate")),
                             ("device", ("cpu", "cuda")), ("lr_schedule", LR_SCHEDULES),
                             ("ternary_scale", ("pow2", "one"))):
            if getattr(self, key) not in options:
                bad(key, getattr(self, key), f"choose one of {', '.join(options)}")
        for key in ("epochs", "batch_size", "eval_batch_size", "timesteps", "input_bits"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                bad(key, v, "must be a whole number ≥ 1")
        if self.input_bits > 8:
            bad("input_bits", self.input_bits, "at most 8 (pixels have 8 bits)")
        for key in ("ternary_after", "seed", "threads", "crop_padding", "warmup"):
            v = getattr(self, key)
            if key == "ternary_after" and v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                bad(key, v, "must be a whole number ≥ 0")
        for key in ("lr", "lr_gamma", "alpha", "delta", "threshold", "weight_scale",
                    "current_decay", "voltage_decay", "dropout", "val_size", "tau_grad",
                    "scale_grad", "label_smoothing", "decay_lr"):
            v = getattr(self, key)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                bad(key, v, "must be a finite number")
        if self.lr <= 0:
            bad("lr", self.lr, "must be > 0")
        if self.decay_lr <= 0:
            bad("decay_lr", self.decay_lr, "must be > 0 (1/4096 per step)")
        if not 0 < self.lr_gamma <= 1:
            bad("lr_gamma", self.lr_gamma, "must be in (0, 1]")
        for key in ("tau_grad", "scale_grad"):
            if getattr(self, key) <= 0:
                bad(key, getattr(self, key), "must be > 0")
        if self.warmup >= self.epochs:
            bad("warmup", self.warmup, f"must be below epochs ({self.epochs})")
        if self.alpha < 0:
            bad("alpha", self.alpha, "must be ≥ 0")
        if self.threshold <= 0 or self.threshold * 64 > 2**17 - 1:
            bad("threshold", self.threshold, "must be in (0, 2047.98] (17-bit mantissa / 64)")
        for key in ("current_decay", "voltage_decay"):
            if not 0 <= getattr(self, key) <= 1:
                bad(key, getattr(self, key), "must be a fraction in [0, 1]")
        if not 0 <= self.label_smoothing < 1:
            bad("label_smoothing", self.label_smoothing, "must be in [0, 1)")
        if not 0 <= self.dropout < 1:
            bad("dropout", self.dropout, "must be in [0, 1)")
        if _methods.extra_net(self.method) == "teacher" and not self.teacher:
            bad("teacher", self.teacher, f"method {self.method} needs --teacher CHECKPOINT")
        _methods.base.check(self)      # the methods' own options
        if self.weights != "fp" and self.ternary_after is not None and \
                self.ternary_after >= self.epochs:
            bad("ternary_after", self.ternary_after,
                f"must be below epochs ({self.epochs}) so that some epochs train compressed")

    @property
    def compress_after(self) -> int:
        """Epochs of full precision before the hidden layers are compressed: ternary_after,
        or half the epochs and at least 1 when it is not given (4 -> 2, 2 -> 1, 1 -> 1).
        Compressing from the first step leaves conv-small's base at chance: its dense layer's
        initial weights all lie within delta (0.1) of 0, so its ternary weights are all 0."""
        return self.ternary_after if self.ternary_after is not None else \
            max(1, self.epochs // 2)

    @property
    def final_weights(self) -> str:
        """The base's weights at the end of the run: `weights`, or fp when no epoch is left
        after compress_after (a 1-epoch run with the default ternary_after)."""
        return "fp" if self.compress_after >= self.epochs else self.weights

    @classmethod
    def from_checkpoint(cls, d: dict) -> "TrainConfig":
        """The training config a checkpoint holds (its 'config' dict): fields it lacks take
        OLD_RUN_DEFAULTS, else today's defaults; keys no field has any more are left out."""
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {**{k: v for k, v in OLD_RUN_DEFAULTS.items() if k not in d},
              **{k: v for k, v in d.items() if k in known}}
        try:
            return cls(**kw)
        except TnaError as e:
            raise TnaError(f"the checkpoint's training config: {e}") from None

    def to_dict(self) -> dict:
        """The fields as a dict: TrainConfig's own first, then the methods' options."""
        d = dataclasses.asdict(self)
        own = [k for k in type(self).__annotations__ if k in d]
        return {**{k: d[k] for k in own}, **{k: v for k, v in d.items() if k not in own}}


def field_default(name: str):
    """The default of TrainConfig field `name` (a run saved before the field existed had it)."""
    return next(f.default for f in dataclasses.fields(TrainConfig) if f.name == name)
