"""`run(net, RunConfig) -> RunResult`: run a netx file on backends and report their parity."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tna import netx
from tna.atomic import atomic_path
from tna.console import count, log
from tna.deploy.backends import BACKENDS, BackendOutput, Job
from tna.deploy.config import RunConfig
from tna.deploy.inputs import dataset_inputs, load_npy
from tna.deploy.parity import compare
from tna.errors import TnaBug, TnaError


@dataclass
class RunResult:
    net: str
    backend: str
    samples: int
    outputs: dict                      # backend name -> BackendOutput
    parity: list                       # one dict per compared pair
    accuracy: dict                     # backend name -> % (when labels are known)
    layer_counts: dict                 # backend name -> {layer name: mean spikes per sample}
                                       # over every sample of the run
    tolerance: float
    per_layer: str | None = None       # first per-layer difference (emulator vs Lava), if asked
    meta: dict = field(default_factory=dict)
    predictions: np.ndarray | None = None   # the target backend's predicted class per sample
    confusion: np.ndarray | None = None     # (classes, classes): row true, column predicted
    plots: list = field(default_factory=list)   # PNGs written
    readout: str = "spike"             # what the run read out: 'voltage' | 'spike' (the Job's)
    loihi2: dict | None = None         # the net's Loihi 2 fit estimate (tna.estimate, no activity)
    labels: np.ndarray | None = None   # the samples' true classes (a data split), else None
    timesteps: int | None = None       # steps each sample ran (T' when fewer than trained)
    trained_timesteps: int | None = None   # the file's T (its tna metadata), None without one

    @property
    def class_names(self) -> list:
        return list(self.meta.get("class_names") or [])

    @property
    def compared(self) -> bool:
        """Whether two backends were compared: with one alone there is no parity verdict."""
        return bool(self.parity) or self.per_layer is not None

    @property
    def ok(self) -> bool:
        if self.per_layer not in (None, "identical"):
            return False
        return all(p["samples_differing_pct"] <= self.tolerance for p in self.parity)

    def to_dict(self) -> dict:
        d = {"net": self.net, "backend": self.backend, "samples": self.samples,
             "parity_holds": self.ok if self.compared else None,
             "tolerance_pct": self.tolerance,
             "accuracy": self.accuracy, "parity": self.parity,
             "layer_spikes_per_sample": self.layer_counts, "per_layer": self.per_layer,
             "seconds": {k: round(o.seconds, 3) for k, o in self.outputs.items()},
             "predictions": None if self.predictions is None else self.predictions.tolist(),
             "readout": self.readout, "plots": [str(p) for p in self.plots],
             "metadata": self.meta, "loihi2_estimate": self.loihi2,
             "timesteps": self.timesteps, "trained_timesteps": self.trained_timesteps}
        if self.confusion is not None:
            from tna.metrics import per_class
            names = self.class_names or [str(i) for i in range(len(self.confusion))]
            d["confusion_matrix"] = {"rows": "true class", "columns": "predicted class",
                                     "classes": names, "counts": self.confusion.tolist()}
            d["per_class_accuracy"] = {n: (None if np.isnan(a) else round(float(a), 2))
                                       for n, a in zip(names, per_class(self.confusion))}
        return d

    def _name(self, c: int) -> str:
        names = self.class_names
        return f"{c} ({names[c]})" if c < len(names) else str(c)

    def summary(self) -> str:
        lines = [f"{self.net}: {count(self.samples, 'sample')} on {', '.join(self.outputs)}"]
        if self.trained_timesteps and self.timesteps and self.timesteps < self.trained_timesteps:
            lines[0] += (f", at T' = {self.timesteps} of the T = {self.trained_timesteps} "
                         f"steps it was trained with (the readout sums {self.timesteps})")
        for name, o in self.outputs.items():
            acc = f", accuracy {self.accuracy[name]:.2f}%" if name in self.accuracy else ""
            lines.append(f"  {name:<10} {o.seconds:8.2f} s ({_rate(self.samples, o.seconds)})"
                         f"{acc}")
        for p in self.parity:
            volt = ("" if p["voltage_values_differing"] is None
                    else f", {p['voltage_values_differing']} voltage values")
            first = ("" if p["first_divergent_step"] is None
                     else f", first divergence at step {p['first_divergent_step']}")
            layers = p["spike_values_differing_by_layer"]
            where = (" (" + ", ".join(f"{k} {v}" for k, v in layers.items()) + ")"
                     if layers else "")
            lines.append(
                f"  {p['a']} vs {p['b']}: predictions agree {p['prediction_agreement']}/"
                f"{p['samples']} ({p['prediction_agreement_pct']:.2f}%), differing: "
                f"{p['spike_values_differing']} spike values{where}{volt}{first}")
            if "accuracy_difference" in p:
                lo, hi = p["accuracy_difference_ci95"]
                lines.append(f"    accuracy difference {p['accuracy_difference']:+.2f} points "
                             f"(95% CI {lo:+.2f} .. {hi:+.2f})")
        for name, counts in self.layer_counts.items():
            lines.append(f"  spikes per sample by layer, all {count(self.samples, 'sample')} "
                         f"({name}): " + ", ".join(f"{k} {c:.1f}" for k, c in counts.items()))
        if self.per_layer is not None:
            lines.append(f"  per-layer u/v/spikes, emulator vs lava-sim: {self.per_layer}")
        if self.predictions is not None and self.confusion is None:    # --input: no labels
            shown = ", ".join(self._name(int(c)) for c in self.predictions[:10])
            more = f", ... ({len(self.predictions)} in all)" if len(self.predictions) > 10 else ""
            lines.append(f"  predicted ({self.backend}): {shown}{more}")
        if self.confusion is not None:
            from tna.metrics import per_class
            acc = per_class(self.confusion)
            worst = [int(i) for i in np.argsort(np.nan_to_num(acc, nan=101.0))[:3]]
            lines.append(f"  per-class accuracy ({self.backend}), lowest: " + ", ".join(
                f"{self._name(i)} {acc[i]:.1f}%" for i in worst))
        for p in self.plots:
            lines.append(f"  wrote {p}")
        if not self.compared:
            lines.append(f"NO PARITY VERDICT: only {self.backend} ran, nothing was compared "
                         f"(--compare A,B runs two backends)")
            return "\n".join(lines)
        verdict = "PARITY HOLDS" if self.ok else "PARITY FAILS"
        tol = "exact" if self.tolerance == 0 else f"tolerance {self.tolerance}% of samples"
        lines.append(f"{verdict} ({tol})")
        return "\n".join(lines)


def _rate(samples: int, seconds: float) -> str:
    if seconds <= 0:
        return "instant"
    rate = samples / seconds
    return f"{rate:,.0f} samples/s" if rate >= 10 else f"{seconds / max(samples, 1):.2f} s/sample"


def run(net_path, cfg: RunConfig = RunConfig()) -> RunResult:
    """Run `net_path` on the backends in `cfg.compare_list` and compare them pairwise."""
    model, meta, bits = _load(net_path, cfg)
    if cfg.input:
        inputs, labels = load_npy(cfg.input, model, cfg.input_layout, bits), None
        if cfg.limit:
            inputs = inputs[:cfg.limit]
    else:
        inputs, labels = dataset_inputs(model, cfg)
    if meta is not None and cfg.timesteps is not None:
        if cfg.timesteps > meta.timesteps:
            raise TnaError(f"--timesteps {cfg.timesteps}: the net was trained with T = "
                           f"{meta.timesteps}; it runs at that many steps or fewer")
        inputs = inputs[..., :cfg.timesteps]     # accuracy at T' < T: the first T' steps
    if meta is not None and inputs.shape[-1] != (cfg.timesteps or meta.timesteps):
        raise TnaError(f"inputs have T = {inputs.shape[-1]} steps but the net was trained with "
                       f"T = {meta.timesteps}")
    if cfg.executor == "slurm":
        from tna.deploy.slurm import submit
        return submit(net_path, cfg, len(inputs))
    if cfg.shard is not None:          # block K of N: its raw results go to --shard-dir
        from tna.deploy import shards
        k, n = shards.parse(cfg.shard)
        total = len(inputs)
        lo, hi = shards.block(total, k, n)
        inputs, labels = inputs[lo:hi], None if labels is None else labels[lo:hi]
    names = _backends(cfg, model)
    job = _job(net_path, cfg, model, inputs, bits)
    outputs = _run_backends(job, names)
    if cfg.shard is not None:
        path = shards.save(cfg.shard_dir, k, n, lo, hi, total, net_path, cfg, outputs, names,
                           labels, inputs)
        log(f"shard {k}/{n}: samples {lo}..{hi - 1} of {total} -> {path} (tna run --merge "
            f"{cfg.shard_dir} joins the {n} shards into one report)")
    return _finish(net_path, cfg, model, meta, bits, inputs, labels, outputs, names,
                   job.readout, write=cfg.shard is None)


def _job(net_path, cfg: RunConfig, model, inputs, bits) -> Job:
    return Job(net_path=str(net_path), model=model, inputs=inputs, readout=_readout(cfg, model),
               input_message_bits=bits, progress=cfg.progress, lava_models=cfg.lava_models,
               loader=cfg.loader, skip_layers=cfg.skip_layers)


def merge(folder, cfg: RunConfig | None = None) -> RunResult:
    """The report of the shards in `folder` (tna.deploy.shards), as one run would write it;
    `cfg` overrides where the report, plots and saved arrays go."""
    from tna.deploy import shards
    net_path, run_cfg, names, outputs, labels, inputs = shards.load(folder)
    if cfg is not None:
        run_cfg = dataclasses.replace(run_cfg, **{k: getattr(cfg, k) for k in (
            "report", "plot", "save_output", "save_input") if getattr(cfg, k) is not None})
    model, meta, bits = _load(net_path, run_cfg)
    log(f"merged {count(len(inputs), 'sample')} from the shards in {folder}")
    return _finish(net_path, run_cfg, model, meta, bits, inputs, labels, outputs, names,
                   _readout(run_cfg, model))


def _finish(net_path, cfg, model, meta, bits, inputs, labels, outputs, names, readout: str,
            write: bool = True) -> RunResult:
    """The RunResult of backend outputs, and (with `write`) its report, plots and arrays."""
    layer_names = {i: f"layer/{i + cfg.skip_layers}" for i in range(len(model.layers))}
    result = _result(net_path, cfg, meta, outputs, names, labels, layer_names)
    result.readout = readout
    result.timesteps = int(inputs.shape[-1])
    result.trained_timesteps = meta.timesteps if meta is not None else None
    # cores and chips only: time and energy need an activity count (tna inspect --loihi2)
    from tna.estimate import EstimateConfig, estimate
    result.loihi2 = estimate(model, EstimateConfig(loader=cfg.loader)).to_dict()
    if cfg.per_layer:
        result.per_layer = _per_layer(net_path, model, inputs[:cfg.layer_samples], bits,
                                      cfg.loader, cfg.skip_layers)
    neurons = {i: int(np.prod(layer.shape)) for i, layer in enumerate(model.layers)}
    if write:
        _write(result, cfg, inputs, labels, layer_names, neurons)
    return result


def _load(net_path, cfg: RunConfig) -> tuple:
    """(the model netx runs, the file's metadata, the input message bits), checked."""
    model = netx.read_net(net_path)
    netx.validate_or_raise(model, where=str(net_path), skip_layers=cfg.skip_layers)
    for warning in netx.loihi_warnings(model):
        log(f"warning: {warning}")
    meta = model.meta
    bits = cfg.input_message_bits
    if bits is None:
        bits = meta.input_message_bits if meta else 0
    model, bits = netx.skip_layers(model, cfg.skip_layers, bits)     # what netx runs
    if cfg.skip_layers and cfg.input_message_bits not in (None, bits):
        log(f"warning: with --skip-layers {cfg.skip_layers} netx feeds the first layer kept "
            f"{bits}-bit messages (the skipped layer's), not --input-message-bits "
            f"{cfg.input_message_bits}")
    return model, meta, bits


def _readout(cfg: RunConfig, model: netx.NetxModel) -> str:
    """--readout, else the file's; an output layer that cannot spike is read by its voltage
    (its spike count would predict class 0 for every sample), said in one line."""
    silent = netx.silent_readout(model)
    if cfg.readout == "spike" and silent:
        log(f"warning: {silent}: with --readout spike every prediction is class 0")
    if cfg.readout is not None:
        return cfg.readout
    if silent:
        log(f"note: {silent}, so its voltage is read out (--readout voltage); pass "
            f"--readout spike for spike counts")
        return "voltage"
    return model.meta.readout if model.meta else "spike"


def accuracy_by_timesteps(result: RunResult) -> dict:
    """{T': accuracy (%)} of the run's target backend at T' = 1..T steps, from its aligned
    output alone: the net is causal, so its first T' output steps are what a run of each
    sample's first T' input steps gives (`tna run --timesteps T'`; tests/deploy/test_report.py
    checks the two agree). On Loihi fewer steps mean less latency and energy per inference."""
    from tna import metrics
    from tna.deploy.backends import logits
    if result.labels is None:
        raise TnaError("accuracy needs labels: run a data split, not an --input array")
    out = result.outputs[result.backend]
    return {t: metrics.percent(metrics.correct(logits(
        out.spikes[..., :t], None if out.voltage is None else out.voltage[..., :t],
        result.readout), result.labels), len(result.labels))
        for t in range(1, out.spikes.shape[-1] + 1)}


def _run_backends(job: Job, names: list) -> dict:
    # Lava forks its processes: run it before torch has started thread pools in this process
    # (forking a process with live OpenMP/BLAS threads can hang the children).
    done: dict[str, BackendOutput] = {}
    for name in sorted(names, key=lambda n: not BACKENDS[n].forks):
        log(f"running {count(len(job.inputs), 'sample')} on {name} ...")
        done[name] = BACKENDS[name].run(job)
        if len(done[name].logits) != len(job.inputs):
            raise TnaBug(f"{name} gave {len(done[name].logits)} outputs for "
                         f"{len(job.inputs)} samples")
        log(f"  {name}: {done[name].seconds:.1f} s")
    return {name: done[name] for name in names}


def _result(net_path, cfg, meta, outputs, names, labels, layer_names) -> RunResult:
    from tna import metrics
    from tna.spikes import counts as spike_counts
    parity = [compare(outputs[names[0]], outputs[b], labels, layer_names) for b in names[1:]]
    accuracy = {k: metrics.percent(metrics.correct(o.logits, labels), len(labels))
                for k, o in outputs.items()} if labels is not None else {}
    counts = {k: {layer_names[i]: float(spike_counts(p).mean()) for i, p in
                  sorted(o.layer_spikes.items())} for k, o in outputs.items()
              if len(o.layer_spikes) > 1}
    main = outputs[cfg.backend] if cfg.backend in outputs else outputs[names[-1]]
    pred = main.logits.argmax(1)
    confusion = None
    if labels is not None:
        classes = max(main.logits.shape[1], int(labels.max()) + 1)
        confusion = metrics.confusion(pred, labels, classes)
    return RunResult(net=str(net_path), backend=main.name, samples=len(pred), outputs=outputs,
                     parity=parity, accuracy=accuracy, layer_counts=counts,
                     tolerance=cfg.tolerance, meta=meta.to_dict() if meta else {},
                     predictions=pred, confusion=confusion, labels=labels)


def _write(result: RunResult, cfg: RunConfig, inputs, labels, layer_names, neurons) -> None:
    """--save-input, --save-output, the plots and --report, each atomically."""
    if cfg.save_input:
        _save_npy(cfg.save_input, inputs)
        if labels is not None:
            p = Path(cfg.save_input)
            _save_npy(p.with_name(p.stem + "_labels.npy"), labels)
    if cfg.save_output:
        main = result.outputs[result.backend]
        readout = main.voltage if main.voltage is not None and \
            result.readout == "voltage" else main.spikes
        _save_npy(cfg.save_output, readout)
        p = Path(cfg.save_output)
        _save_npy(p.with_name(p.stem + "_predicted.npy"), result.predictions)
    folder = cfg.plot or (str(Path(cfg.report).parent) if cfg.report else None)
    if folder is not None:     # next to a report, named after it: several reports, one folder
        prefix = "" if cfg.plot else Path(cfg.report).stem + "_"
        result.plots = _plots(result, Path(folder), layer_names, neurons, prefix, labels)
    if cfg.report:
        with atomic_path(cfg.report) as tmp:
            Path(tmp).write_text(json.dumps(result.to_dict(), indent=2) + "\n")


def _plots(result: RunResult, folder: Path, layer_names: dict, neurons: dict,
           prefix: str = "", labels=None) -> list:
    """confusion.png (with labels) and raster.png (sample 0, every layer)."""
    from tna.deploy import plots
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    who = f"{Path(result.net).name} on {result.backend}"
    if result.confusion is not None:
        acc = result.accuracy.get(result.backend, float("nan"))
        written.append(plots.confusion_png(
            result.confusion, result.class_names, f"{who}: {count(result.samples, 'sample')}, "
            f"accuracy {acc:.2f}%", folder / f"{prefix}confusion.png"))
    ref = result.outputs.get("reference") or next(iter(result.outputs.values()))
    main = result.outputs[result.backend]
    layers = []
    steps = main.spikes.shape[-1]
    for i in sorted(set(ref.layer_spikes) | set(main.layer_spikes)):
        def one(out, i=i):     # sample 0 as (neurons, T); packbits padded it to whole bytes
            p = out.layer_spikes.get(i)
            return None if p is None else \
                np.unpackbits(p[0])[:neurons[i] * steps].reshape(neurons[i], steps)
        layers.append((layer_names[i], one(ref), one(main) if main is not ref else None,
                       result.backend))
    if main.voltage is not None and ref.voltage is not None and result.readout == "voltage":
        layers[-1] = (f"{layers[-1][0]} readout voltage", ref.voltage[0],
                      main.voltage[0] if main is not ref else None, result.backend)
    if layers:
        written.append(plots.raster_png(
            layers, f"{who}: sample 0, spikes per layer (reference o, {result.backend} x)",
            folder / f"{prefix}raster.png", result.class_names,
            label=None if labels is None else int(labels[0]),
            predicted=None if result.predictions is None else int(result.predictions[0])))
    return written


def _backends(cfg: RunConfig, model: netx.NetxModel) -> list:
    """The backends to run: `cfg.compare_list`. Without --compare, the target is compared with
    the first default partner (the reference, then the emulator) that can run the net, and
    runs alone when none can."""
    names = cfg.compare_list
    if cfg.compare is not None or len(names) < 2:
        return names
    partners = sorted((b for b in BACKENDS.values() if b.partner is not None),
                      key=lambda b: b.partner)
    for b in partners:
        if b.name != cfg.backend and b.unsupported(model) is None:
            return [b.name, cfg.backend]
    why = "; ".join(b.unsupported(model) for b in partners if b.name != cfg.backend)
    log(f"note: no other backend runs this net ({why}), so {cfg.backend} runs alone, without "
        f"a parity check")
    return [cfg.backend]


def _save_npy(path, array) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array)


def _per_layer(net_path, model, inputs, bits, loader, skip_layers) -> str:
    """Every layer's spikes, u and v: emulator vs the real Lava simulator, first difference."""
    from tna.sim.emulator import emulate, first_difference
    from tna.lava.harness import record_lava
    a = emulate(model, inputs, input_message_bits=bits, record=("spikes", "u", "v"),
                loader=loader)
    b = record_lava(net_path, inputs, input_message_bits=bits, loader=loader,
                    skip_layers=skip_layers)
    diff = first_difference(a, b)
    return "identical" if diff is None else str(diff)
