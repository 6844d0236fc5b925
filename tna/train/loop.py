"""The training recipe: setup -> epochs -> final test. `train(cfg)` returns best.pt's path.

Loss per method (logits = the output layer's readout, see tna.models.snn); each method is a
module of tna.train.methods, and `--method a+b` sums both methods' terms:
  single        CE(base)
  tna           CE(base) + CE(twin) + alpha * MSE(logits_base, logits_twin)  (the paper's Eq. 5)
  kd            MSE(logits_base, logits_teacher), or τ²·KL with --kd-loss kl  (teacher frozen)
  kd-ce         CE(base) + alpha * the kd term
  self-distill  CE(base) + λ·KL between the most and least confident time steps
  tasg          CE(base) + w·KL between adjacent time steps, terms dropped at random
With --weights ternary|binary the base's hidden layers are compressed from epoch
`ternary_after` on (Eq. 6); training continues on the latent weights (straight-through).

Determinism: the data order, augmentation and rate spikes are keyed by (seed, epoch, batch) and
the global torch RNG (dropout) is saved at every epoch end, so `--resume` after an interruption
reaches the same final weights as an uninterrupted run on CPU.

Under torchrun (several processes) the same loop runs data-parallel: see tna.train.distributed.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from tna import checkpoint as ckpt
from tna import metrics
from tna import cluster
from tna.atomic import atomic_path, remove_stale_temps, write_text
from tna.console import count, progress_enabled
from tna.errors import TnaError
from tna.metrics import at_chance
from tna.train import distributed
from tna.train import methods
from tna.train.config import RESUME_FREE, TrainConfig, field_default


def loss_terms(logits, y, twin_logits=None, teacher_logits=None, method="tna", alpha=1e-4,
               label_smoothing=0.0, steps=None, cfg=None):
    """The loss terms of one batch as a dict of scalar tensors; 'loss' is their weighted sum.

    `label_smoothing` (PyTorch's, 0 = the paper's plain CE) applies to every CE term. `steps`:
    the base's readout per step (N, classes, T), for methods that read it. `cfg`: the run's
    TrainConfig (the methods' options); without it, the defaults with `method`, `alpha` and
    `label_smoothing`."""
    if cfg is None:
        cfg = _LossConfig(method, alpha, label_smoothing)
    out = methods.Outputs(logits=logits, labels=y, steps=steps, twin=twin_logits,
                          teacher=teacher_logits)
    return methods.loss_terms(out, cfg)


class _LossConfig:
    """TrainConfig's defaults with a method, alpha and label smoothing (loss_terms without a
    run's config: unit tests, benchmarks); not checked, as a TrainConfig would be."""

    def __init__(self, method, alpha, label_smoothing):
        self.method, self.alpha, self.label_smoothing = method, alpha, label_smoothing

    def __getattr__(self, name):
        try:
            return field_default(name)
        except StopIteration:
            raise AttributeError(name) from None


def lr_factor(step: int, steps_per_epoch: int, cfg: TrainConfig) -> float:
    """The lr multiplier before optimiser step `step` (0-based, counted over the whole run).

    warm-up: linear from 1/100 to 1 over `cfg.warmup` epochs; then
    cosine:  0.5 * (1 + cos(pi * progress)), progress 0 -> 1 over the remaining steps;
    exp:     lr_gamma ** (epochs completed), the paper's per-epoch decay.
    """
    warm = cfg.warmup * steps_per_epoch
    if step < warm:
        return 0.01 + 0.99 * step / warm
    if cfg.lr_schedule == "exp":
        return cfg.lr_gamma ** (step // steps_per_epoch)
    total = max(cfg.epochs * steps_per_epoch - warm, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(step - warm, total) / total))


def data_config(cfg: TrainConfig):
    from tna.data import DataConfig
    return DataConfig(dataset=cfg.dataset, data_dir=cfg.data_dir, val_size=cfg.val_size,
                      limit=cfg.limit, train_limit=cfg.train_limit, augment=cfg.augment,
                      crop_padding=cfg.crop_padding,
                      encoding=cfg.encoding, input_bits=cfg.input_bits,
                      timesteps=cfg.timesteps, seed=cfg.seed)


def model_spec_for(cfg: TrainConfig, data):
    from tna.models.spec import make_spec
    input_max = 2 ** cfg.input_bits - 1 if cfg.encoding == "direct" else 1
    return make_spec(cfg.arch, data.image_shape, data.num_classes, threshold=cfg.threshold,
                     current_decay=cfg.current_decay, voltage_decay=cfg.voltage_decay,
                     weight_scale=cfg.weight_scale, dropout=cfg.dropout, readout=cfg.readout,
                     input_scale=1.0 / input_max, tau_grad=cfg.tau_grad,
                     scale_grad=cfg.scale_grad, learn_decays=cfg.learn_decays)


def _param_groups(model, twin, cfg: TrainConfig) -> list[dict]:
    """Adam's parameter groups: the weights at --lr; learned decays (slayer keeps them as
    4096 * fraction) at --decay-lr, since an lr sized for weights would barely move them."""
    params = [(n, p) for net in (model, twin) if net is not None
              for n, p in net.named_parameters() if p.requires_grad]
    decay = [p for n, p in params if n.endswith(("current_decay", "voltage_decay"))]
    rest = [p for n, p in params if not n.endswith(("current_decay", "voltage_decay"))]
    return [{"params": rest}] + ([{"params": decay, "lr": cfg.decay_lr}] if decay else [])


def evaluate(model, loader, device="cpu", progress=False, desc="eval",
             world: distributed.World = distributed.World()) -> float:
    """Top-1 accuracy (%) of `model` on every batch of `loader` (split over `world`'s processes,
    counts summed over them)."""
    hits, total = metrics.evaluate(model, loader, device, progress and world.main, desc,
                                   shard=world.shard)
    hits, total = distributed.all_reduce_sums([hits, total], world, device)
    return metrics.percent(hits, total)


def val_metrics(model, twin, loader, device="cpu",
                world: distributed.World = distributed.World()) -> dict:
    """Validation accuracy (%) and mean CE of base (and twin), and the base-twin logit MSE:
    the curves of the paper's Fig. 2, from one pass over `loader` (split over `world`)."""
    nets = {"": model} if twin is None else {"": model, "twin_": twin}
    for net in nets.values():
        net.eval()
    sums = dict.fromkeys([f"{k}val_{m}" for k in nets for m in ("acc", "ce")], 0.0)
    if twin is not None:
        sums["val_mse"] = 0.0
    total = 0
    with torch.no_grad():
        for x, y in loader.batches(0, shard=world.shard):
            if len(y) == 0:
                continue
            x = x.to(device)
            logits = {k: net(x).cpu() for k, net in nets.items()}
            for k, z in logits.items():
                sums[f"{k}val_acc"] += 100.0 * (z.argmax(1) == y).sum().item()
                sums[f"{k}val_ce"] += F.cross_entropy(z, y, reduction="sum").item()
            if twin is not None:   # F.mse_loss's mean over a batch's elements, weighted by samples
                sums["val_mse"] += F.mse_loss(logits[""], logits["twin_"]).item() * len(y)
            total += len(y)
    if world.size > 1:        # counts and sums of all processes: the single-process figures
        *values, total = distributed.all_reduce_sums([*sums.values(), total], world, device)
        sums = dict(zip(sums, values))
    return {k: v / max(total, 1) for k, v in sums.items()}


def compress(model, cfg: TrainConfig, scales=None) -> dict:
    """Compress the base's hidden layers; `scales` (from a checkpoint) fixes their ±s."""
    from tna.quant import (BinaryConfig, TernaryConfig, binarize_, compression_scales,
                           ternarize_)
    scales = tuple(scales) if scales else None
    if cfg.weights == "ternary":
        layers = ternarize_(model, TernaryConfig(cfg.delta, cfg.ternary_scale, scales))
    else:
        layers = binarize_(model, BinaryConfig(cfg.ternary_scale, scales))
    return {"mode": cfg.weights, "delta": cfg.delta, "layers": layers,
            "scales": compression_scales(model)}


class Run:
    """The state of one training run (setup / epoch / save); kept flat on purpose."""

    def __init__(self, cfg: TrainConfig, world: distributed.World = distributed.World()):
        from tna.data import load_data
        from tna.models.snn import build_model

        self.cfg = cfg
        self.world = world             # this process's rank among the run's processes
        self.out = Path(cfg.out)
        if cfg.device == "cuda" and not torch.cuda.is_available():
            raise TnaError("--device cuda: no CUDA device is visible; use --device cpu")
        nets = methods.extra_net(cfg.method)   # none | twin | teacher
        self.per_step = methods.per_step(cfg.method)   # the loss reads the readout per step
        if nets == "teacher":
            ckpt.load(cfg.teacher)     # a bad teacher file fails now, not after data and models
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        elif cluster.allocated_cpus() < torch.get_num_threads():
            # a SLURM task or a taskset: torch counts the node's cores, not the allocation
            torch.set_num_threads(cluster.allocated_cpus())
        self.device = distributed.torch_device(cfg.device, world)
        self.data = load_data(data_config(cfg), batch_size=cfg.batch_size,
                              eval_batch_size=cfg.eval_batch_size)
        distributed.check_sizes(world, cfg.batch_size, self.data.train.num_samples)
        self.spec = model_spec_for(cfg, self.data)
        torch.manual_seed(cfg.seed)
        self.model = build_model(self.spec, seed=cfg.seed).to(self.device)
        self.twin = (build_model(self.spec, seed=cfg.seed + 1).to(self.device)
                     if nets == "twin" else None)
        self.teacher = self._load_teacher() if nets == "teacher" else None
        params = list(self.model.parameters())
        if self.twin is not None:
            params += list(self.twin.parameters())
        self.params = [p for p in params if p.requires_grad]   # base and twin: trained, shared
        self.opt = torch.optim.Adam(_param_groups(self.model, self.twin, cfg), lr=cfg.lr)
        steps = len(self.data.train)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda step: lr_factor(step, steps, cfg))   # stepped after every batch
        self.epoch = 0
        self.metrics: list[dict] = []
        self.compression: dict | None = None
        self.best_val = -1.0
        self.warnings: list[str] = []   # dying-run warnings, kept in result.json

    def _load_teacher(self):
        teacher, state = ckpt.load_model(self.cfg.teacher)
        if teacher.spec.num_classes != self.spec.num_classes or \
                tuple(teacher.spec.in_shape) != tuple(self.spec.in_shape):
            raise TnaError(f"{state['path']}: teacher was trained on input {teacher.spec.in_shape} "
                           f"with {teacher.spec.num_classes} classes, this data has "
                           f"{self.spec.in_shape} and {self.spec.num_classes}")
        for p in teacher.parameters():
            p.requires_grad_(False)
        return teacher.to(self.device).eval()

    # ---------------------------------------------------------------- state
    def state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "twin": self.twin.state_dict() if self.twin is not None else None,
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "epoch": self.epoch,
            "rng": torch.get_rng_state(),
            "config": self.cfg.to_dict(),
            "model_spec": self.spec.to_dict(),
            "data": {"dataset": self.cfg.dataset, "class_names": list(self.data.class_names),
                     "image_shape": list(self.data.image_shape), "source": self.data.source},
            "compression": self.compression,
            "metrics": self.metrics,
            "best_val": self.best_val,
            "final_weights": self.cfg.final_weights,   # the weight mode best.pt is picked in
            "warnings": self.warnings,
            "processes": self.world.size,
        }

    @property
    def layer_names(self) -> list[str]:
        """The spiking layers (all but the readout) as the exported file numbers them: layer/0
        is the input, a flatten is a layer of its own."""
        return [f"layer/{k + 1}" for k, layer in enumerate(self.spec.layers[:-1])
                if layer.kind != "flatten"]

    def resume(self) -> None:
        path = self.out / "checkpoint.pt"
        if not path.is_file():
            raise TnaError(f"--resume: {path} does not exist; start without --resume or point "
                           f"--out at the run folder to continue")
        state = ckpt.load(path)
        old = dict(state["config"])
        new = self.cfg.to_dict()
        # Only these may change on resume; anything else would not continue the same run.
        free = {"resume", "out", *RESUME_FREE}
        # a key the old run lacks (a method option added since) had its default then
        changed = sorted(k for k in new if k not in free and
                         old.get(k, field_default(k)) != new[k])
        if changed:
            raise TnaError(f"--resume: {', '.join(changed)} differ from the run in {path}; "
                           f"resume with the same settings or use a new --out")
        if state.get("compression"):
            self.compression = compress(self.model, self.cfg,
                                         state["compression"].get("scales"))
        self.model.load_state_dict(state["model"])
        if self.twin is not None:
            self.twin.load_state_dict(state["twin"])
        check_resume_epochs(self.out, self.cfg.epochs, int(state["epoch"]))
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        self.epoch = int(state["epoch"])
        self._continue_schedule(int(old.get("epochs", self.cfg.epochs)))
        self.metrics = list(state["metrics"])
        self.best_val = float(state["best_val"])
        if state.get("final_weights", old.get("weights")) != self.cfg.final_weights:
            self.best_val = -1.0   # best.pt was picked among fp epochs: pick again among these
        self.warnings = list(state.get("warnings", []))
        before = int(state.get("processes", 1))
        if before != self.world.size:
            _log(f"note: the run was trained in {before} process(es) and continues in "
                 f"{self.world.size}: dropout masks and float rounding differ from an "
                 f"uninterrupted run")

    def _continue_schedule(self, old_epochs: int) -> None:
        """Set the lr of the next step from this run's schedule. The optimizer state holds the
        lr of the old schedule, which the first step would use and the epoch line log: an
        extension (--epochs above the run's) continues on the new one from its first step."""
        step = self.sched.last_epoch      # optimiser steps taken
        old_lr = self.opt.param_groups[0]["lr"]
        for group, base in zip(self.opt.param_groups, self.sched.base_lrs):
            group["lr"] = base * lr_factor(step, len(self.data.train), self.cfg)
        if old_epochs != self.cfg.epochs and self.cfg.lr_schedule == "cosine":
            _log(f"note: --epochs {self.cfg.epochs} (the run had {old_epochs}): the cosine lr "
                 f"schedule is rebuilt over {self.cfg.epochs} epochs, so epoch {self.epoch + 1} "
                 f"starts at lr {self.opt.param_groups[0]['lr']:.2e} (the old one was at "
                 f"{old_lr:.2e})")

    def warn(self, lines) -> None:
        for line in lines:
            if line:
                _log(line)
                self.warnings.append(line)

    def activity(self, x) -> list[float]:
        """Spike activity per layer on a fixed batch, without touching the training RNG."""
        with torch.random.fork_rng(devices=[]):
            return self.model.layer_activity(x)

    # ---------------------------------------------------------------- one epoch
    def train_epoch(self) -> dict:
        from tqdm import tqdm
        cfg, loader = self.cfg, self.data.train
        self.model.train()
        if self.twin is not None:
            self.twin.train()
        sums: dict[str, float] = {}
        correct = correct_twin = seen = 0
        shared = self.world.size > 1
        if shared:      # dropout masks keyed per process and epoch (tna.train.distributed)
            torch.manual_seed(distributed.dropout_seed(cfg.seed, self.epoch, self.world))
        t0 = time.time()
        bar = tqdm(loader.batches(self.epoch, shard=self.world.shard), total=len(loader),
                   file=sys.stderr, desc=f"epoch {self.epoch + 1}/{cfg.epochs}", leave=False,
                   disable=not progress_enabled(cfg.progress) or not self.world.main)
        for b, (x, y) in enumerate(bar):
            if shared and len(y) == 0:   # a last batch smaller than the process count
                self._step_shared(None)
                continue
            x, y = x.to(self.device), y.to(self.device)
            steps = self.model(x, steps=True) if self.per_step else None
            logits = self.model(x) if steps is None else steps.sum(-1)
            twin_logits = self.twin(x) if self.twin is not None else None
            teacher_logits = None
            if self.teacher is not None:
                with torch.no_grad():
                    teacher_logits = self.teacher(x)
            terms = loss_terms(logits, y, twin_logits, teacher_logits, cfg.method, cfg.alpha,
                               cfg.label_smoothing, steps, cfg)
            if shared:
                self._step_shared(terms["loss"] * (len(y) / self._global_batch(b)))
            else:
                if not torch.isfinite(terms["loss"]):
                    self._diverged(terms["loss"].item())
                self.opt.zero_grad(set_to_none=True)
                terms["loss"].backward()
                self.opt.step()
                self.sched.step()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            if twin_logits is not None:
                correct_twin += (twin_logits.argmax(1) == y).sum().item()
            seen += len(y)
            bar.set_postfix(loss=f"{sums['loss'] / seen:.3f}", acc=f"{100 * correct / seen:.1f}")
        if shared:      # the global batch sums: single-process figures up to float rounding
            keys = list(sums)           # the same terms, in the same order, everywhere
            *values, correct, correct_twin, seen = distributed.all_reduce_sums(
                [sums[k] for k in keys] + [correct, correct_twin, seen], self.world, self.device)
            sums = dict(zip(keys, values))
        row = {k: v / max(seen, 1) for k, v in sums.items()}
        row["train_acc"] = 100.0 * correct / max(seen, 1)
        if self.twin is not None:
            row["twin_train_acc"] = 100.0 * correct_twin / max(seen, 1)
        row["train_seconds"] = time.time() - t0
        row["samples_per_s"] = seen / max(row["train_seconds"], 1e-9)
        return row

    def _global_batch(self, b: int) -> int:
        """Samples in global batch `b` of the train split (all processes' parts together)."""
        loader = self.data.train
        return min(loader.batch_size, loader.num_samples - b * loader.batch_size)

    def _step_shared(self, loss) -> None:
        """One optimiser step of a data-parallel run: `loss` is this process's mean loss times
        its share of the global batch (None: an empty share); gradients summed over processes."""
        self.opt.zero_grad(set_to_none=True)
        if loss is not None:
            loss.backward()
        total = distributed.all_reduce_grads(self.params, loss.item() if loss is not None
                                             else 0.0)
        if not math.isfinite(total):        # every process sees the same sum and stops
            self._diverged(total)
        self.opt.step()
        self.sched.step()

    def _diverged(self, loss: float):
        raise TnaError(f"epoch {self.epoch + 1}: the loss became {loss}; "
                       f"lower --lr (now {self.cfg.lr}) or --weight-scale")

    def save(self, row: dict) -> None:
        self.metrics.append(row)
        # best.pt: best validation accuracy among epochs in the final weight mode. Without a
        # validation split (--val-size 0) it is the last epoch: train accuracy, measured under
        # dropout on weights that move during the epoch, cannot pick one.
        final_mode = self.cfg.final_weights == "fp" or self.compression is not None
        if "val_acc" in row:
            is_best = final_mode and row["val_acc"] > self.best_val
            if is_best:
                self.best_val = row["val_acc"]
        else:
            is_best = final_mode
        state = self.state()
        # best.pt first: a run killed between the two writes resumes from the previous
        # checkpoint.pt, redoes this epoch and writes best.pt again. The other order could leave
        # a checkpoint whose best_val claims a best.pt that was never written.
        if is_best:
            ckpt.save(state, self.out / "best.pt")
        ckpt.save(state, self.out / "checkpoint.pt")
        with atomic_path(self.out / "metrics.jsonl") as tmp:
            tmp.write_text("".join(json.dumps(m) + "\n" for m in self.metrics))
        plot_curves(self.metrics, self.out / "curves.png")


def plot_curves(metrics: list[dict], path, test: tuple | None = None) -> None:
    """Loss terms and accuracies per epoch, in two panels; `test` = (epoch, accuracy) of the
    base's test accuracy, measured once on best.pt at the end."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [m["epoch"] for m in metrics]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    # the summed loss and each method's terms (tna.train.methods: CE, the twin's CE and MSE,
    # the distillation KLs of self-distill, tasg and kd --kd-loss kl)
    kls = [k for k in metrics[0] if k.endswith("_kl")]
    for key in ("loss", "ce_base", "ce_twin", "mse", *kls):
        if key in metrics[0] and all(m.get(key) is not None and m[key] > 0 for m in metrics):
            vals = [m[key] for m in metrics]
            ax1.plot(epochs, vals, marker="o", label=key)
    ax1.set_yscale("log")
    ax1.set_xlabel("epoch")
    ax1.set_title("loss terms")
    ax1.legend()
    for key in ("train_acc", "val_acc", "twin_train_acc", "twin_val_acc"):
        if key in metrics[0]:
            ax2.plot(epochs, [m[key] for m in metrics], marker="o", label=key)
    if test is not None:
        ax2.plot([test[0]], [test[1]], marker="*", ms=14, ls="none", color="black",
                 label=f"test (best.pt) {test[1]:.2f}%")
    switch = [m["epoch"] for m in metrics if m.get("compressed")]
    if switch:
        ax2.axvline(switch[0] - 0.5, color="grey", ls="--", label="compression on")
    for ax in (ax1, ax2):
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy (%)")
    ax2.set_title("accuracy")
    ax2.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def _log(msg: str) -> None:
    if distributed.is_main():           # one voice for a run of several processes
        print(msg, file=sys.stderr, flush=True)


def train(cfg: TrainConfig, on_epoch=None) -> Path:
    """Train per `cfg`; write the run folder; return the path of best.pt.

    `on_epoch(model, row)`, if given, is called after every epoch with the base model and the
    epoch's metrics (benchmarks use it to test the base as training goes).

    Started by torchrun, every process calls this and the run is data-parallel (rank 0 writes
    the run folder and calls `on_epoch`; see tna.train.distributed).
    """
    world = distributed.setup(cfg.device)
    try:
        return _train(cfg, on_epoch, world)
    except KeyboardInterrupt:       # the command line says "interrupted" after this line
        if world.main and (Path(cfg.out) / "checkpoint.pt").is_file():
            _log(f"the last finished epoch is saved; resume with "
                 f"`tna train --resume {cfg.out}`")
        raise
    finally:
        distributed.teardown(world)


def check_resume_epochs(out, epochs: int, trained: int | None = None) -> None:
    """A resume must not ask for fewer epochs than the run folder `out` has trained
    (`trained`: read from its checkpoint.pt when not given)."""
    if trained is None:
        path = Path(out) / "checkpoint.pt"
        if not path.is_file():
            return                      # resume() names the missing checkpoint
        trained = int(ckpt.load(path)["epoch"])
    if epochs < trained:
        raise TnaError(f"--resume {out} --epochs {epochs}: {count(trained, 'epoch')} "
                       f"{'is' if trained == 1 else 'are'} already trained; give --epochs above "
                       f"{trained} to train on")


def _check_not_finished(cfg: TrainConfig) -> None:
    """--resume of a run that trained all its epochs and wrote result.json would only test it
    again: say so (a run stopped during its final test has no result.json and is tested)."""
    path = Path(cfg.out) / "result.json"
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if isinstance(result, dict) and result.get("epochs") == cfg.epochs:
        remove_stale_temps(cfg.out)     # of a run killed after its last write
        raise TnaError(f"{cfg.out} is finished: {cfg.epochs} of {cfg.epochs} epochs trained and "
                       f"tested ({path}); to train on, give more epochs (tna train --resume "
                       f"{cfg.out} --epochs {2 * cfg.epochs}), or export it (tna export "
                       f"{cfg.out})")


def _train(cfg: TrainConfig, on_epoch, world: distributed.World) -> Path:
    if cfg.resume:
        _check_not_finished(cfg)
    run = Run(cfg, world)
    if cfg.resume:
        run.resume()
        _log(f"resuming {run.out} after epoch {run.epoch}")
    elif (run.out / "checkpoint.pt").exists():
        raise TnaError(f"{run.out} already holds a run; pass --resume to continue it or choose "
                       f"another --out")
    probe = _start(run) if world.main else None
    while run.epoch < cfg.epochs:
        _epoch(run, probe, on_epoch)
    return _finish(run)


def _start(run: "Run"):
    """Rank 0: the run folder, its config.yaml, and a fixed batch to watch spike activity on."""
    import yaml

    from tna.train.health import activity_warnings
    cfg, out, data = run.cfg, run.out, run.data
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out)          # temporaries of a run killed with -9 mid-write
    write_text(out / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    x0, _ = next(data.train.batches(0))
    probe = x0[:64].to(run.device)
    rates = run.activity(probe)
    processes = f" | {run.world.size} processes" if run.world.size > 1 else ""
    _log(f"data: {data.source} train {data.train.num_samples} "
         f"val {data.val.num_samples if data.val else 0} "
         f"test {data.test.num_samples} | model {run.spec.arch} | method {cfg.method} "
         f"weights {cfg.weights}{processes}")
    _log("spike activity per layer at start: " + " ".join(f"{100 * r:.1f}%" for r in rates))
    if cfg.weights != cfg.final_weights:
        _log(f"note: --epochs {cfg.epochs} leaves no epoch for {cfg.weights} weights (by default "
             f"they start after --ternary-after {cfg.compress_after} fp epoch): this run trains "
             f"fp; give --epochs 2 or more for a {cfg.weights} base")
    if run.epoch == 0:
        run.warn(activity_warnings(rates, names=run.layer_names))
    return probe


def _epoch(run: "Run", probe, on_epoch) -> None:
    """One epoch: compress when its time comes, train, validate; rank 0 reports and saves."""
    cfg = run.cfg
    if cfg.weights != "fp" and run.epoch >= cfg.compress_after and run.compression is None:
        run.compression = compress(run.model, cfg)
        names = [f"layer/{k + 1}" for k in run.compression["layers"]]   # as the file numbers them
        _log(f"epoch {run.epoch + 1}: base hidden layers {', '.join(names)} now "
             f"{cfg.weights}, ±" + ", ±".join(f"{s:g}" for s in run.compression["scales"]))
    row = {"epoch": run.epoch + 1, "lr": run.opt.param_groups[0]["lr"],
           "compressed": run.compression is not None}
    t0 = time.time()
    row.update(run.train_epoch())
    if run.data.val is not None:
        row.update(val_metrics(run.model, run.twin, run.data.val, run.device, run.world))
    run.epoch += 1
    row["seconds"] = time.time() - t0          # the whole epoch: training and validation
    if not run.world.main:
        return
    row["activity"] = run.activity(probe)
    _log(_epoch_line(run, row))
    run.warn(_epoch_warnings(run, row))        # after the epoch line, before saving
    run.save(row)
    if on_epoch is not None:
        with torch.random.fork_rng(devices=[]):
            on_epoch(run.model, row)
        run.model.train()


def _epoch_line(run: "Run", row: dict) -> str:
    cfg = run.cfg
    parts = [f"epoch {row['epoch']}/{cfg.epochs}", f"loss {row['loss']:.4f}",
             f"train {row['train_acc']:.2f}%"]
    if "val_acc" in row:
        parts.append(f"val {row['val_acc']:.2f}%")
    if "twin_val_acc" in row:
        parts.append(f"twin val {row['twin_val_acc']:.2f}%")
    val_s = row["seconds"] - row["train_seconds"]
    parts += [f"lr {row['lr']:.2e}", f"{row['seconds']:.0f}s" + (
              f" ({row['train_seconds']:.0f} train + {val_s:.0f} val)"
              if run.data.val is not None else ""),
              "[" + (cfg.weights if run.compression else "fp") + "]"]
    return " | ".join(parts)


def _epoch_warnings(run: "Run", row: dict) -> list:
    from tna.train.health import accuracy_warning, activity_warnings
    warnings = activity_warnings(row["activity"], run.epoch, run.layer_names)
    for name, key in (("base", "val_acc"), ("twin", "twin_val_acc")):
        acc = row.get(key, row.get("train_acc" if name == "base" else "twin_train_acc"))
        if acc is not None:
            cause = _compression_cause(run) if name == "base" else None
            warnings.append(accuracy_warning(name, acc, run.data.num_classes, run.epoch, cause))
    return [w for w in warnings if w]


def _compression_cause(run: "Run") -> str | None:
    """Why a compressed base is at chance, unless it was at chance in fp already."""
    from tna.train.health import compression_cause
    if run.compression is None:
        return None
    fp = [m for m in run.metrics if not m.get("compressed")]
    if fp and at_chance(fp[-1].get("val_acc", fp[-1]["train_acc"]), run.data.num_classes):
        return None
    return compression_cause(run.cfg.weights, run.cfg.compress_after, run.cfg.delta)


def _finish(run: "Run") -> Path:
    """Test best.pt, write result.json and the curves with the test point; best.pt's path."""
    cfg, out, world = run.cfg, run.out, run.world
    distributed.barrier(world)     # rank 0 has written the last checkpoint
    best = out / ("best.pt" if (out / "best.pt").exists() else "checkpoint.pt")
    model, state = ckpt.load_model(best)
    test_acc = evaluate(model.to(run.device), run.data.test, run.device, cfg.progress, "test",
                        world)
    if not world.main:
        return best
    summary = {"best_epoch": int(state["epoch"]),
               "best_val_acc": state["best_val"] if state["best_val"] >= 0 else None,
               "test_acc": test_acc, "weights": cfg.final_weights, "method": cfg.method,
               "epochs": cfg.epochs, "train_seconds": sum(m["train_seconds"] for m in run.metrics),
               "processes": world.size, "warnings": run.warnings}
    # result.json marks the run finished (a finished run is not resumed): it is written last,
    # so that a run killed while plotting is resumed, and cleans up the plot's temporary
    plot_curves(run.metrics, out / "curves.png", (summary["best_epoch"], test_acc))
    write_text(out / "result.json", json.dumps(summary, indent=2) + "\n")
    weights = cfg.final_weights
    if cfg.val_size == 0 or run.data.val is None:
        rule = "the last epoch" + (f" in {weights} weights" if weights != "fp" else "")
    elif weights != "fp":
        rule = (f"the best validation accuracy among the {weights} epochs; an fp epoch "
                f"cannot be exported as {weights}")
    else:
        rule = "the best validation accuracy"
    _log(f"test accuracy of the base: {test_acc:.2f}% (best.pt = epoch "
         f"{summary['best_epoch']}, {rule})  -> {best}")
    if math.isnan(test_acc):
        raise TnaError("test accuracy is NaN")
    return best
