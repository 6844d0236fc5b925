"""`run(net, RunConfig) -> RunResult`: run a netx file on backends and report their parity."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tna import netx
from tna.atomic import atomic_path
from tna.console import log
from tna.deploy.backends import ADAPTERS, BackendOutput, Job
from tna.deploy.config import RunConfig
from tna.deploy.parity import compare
from tna.errors import TnaError


@dataclass
class RunResult:
    net: str
    backend: str
    samples: int
    outputs: dict                      # backend name -> BackendOutput
    parity: list                       # one dict per compared pair
    accuracy: dict                     # backend name -> % (when labels are known)
    layer_counts: dict                 # backend name -> mean spikes per sample per layer
    tolerance: float
    per_layer: str | None = None       # first per-layer difference (emulator vs Lava), if asked
    meta: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        if self.per_layer not in (None, "identical"):
            return False
        return all(p["samples_differing_pct"] <= self.tolerance for p in self.parity)

    def to_dict(self) -> dict:
        return {"net": self.net, "backend": self.backend, "samples": self.samples,
                "parity_holds": self.ok, "tolerance_pct": self.tolerance,
                "accuracy": self.accuracy, "parity": self.parity,
                "layer_spikes_per_sample": self.layer_counts, "per_layer": self.per_layer,
                "seconds": {k: round(o.seconds, 3) for k, o in self.outputs.items()},
                "metadata": self.meta}

    def summary(self) -> str:
        lines = [f"{self.net}: {self.samples} samples on {', '.join(self.outputs)}"]
        for name, o in self.outputs.items():
            acc = f", accuracy {self.accuracy[name]:.2f}%" if name in self.accuracy else ""
            rate = self.samples / o.seconds if o.seconds > 0 else float("inf")
            lines.append(f"  {name:<10} {o.seconds:8.2f} s ({rate:,.0f} samples/s){acc}")
        for p in self.parity:
            volt = ("" if p["voltage_values_differing"] is None
                    else f", {p['voltage_values_differing']} voltage values")
            first = ("" if p["first_divergent_step"] is None
                     else f", first divergence at step {p['first_divergent_step']}")
            lines.append(
                f"  {p['a']} vs {p['b']}: predictions agree {p['prediction_agreement']}/"
                f"{p['samples']} ({p['prediction_agreement_pct']:.2f}%), differing: "
                f"{p['spike_values_differing']} spike values{volt}{first}")
            if "accuracy_difference" in p:
                lo, hi = p["accuracy_difference_ci95"]
                lines.append(f"    accuracy difference {p['accuracy_difference']:+.2f} points "
                             f"(95% CI {lo:+.2f} .. {hi:+.2f})")
        if self.layer_counts:
            for name, counts in self.layer_counts.items():
                lines.append(f"  spikes per sample by layer ({name}): "
                             + " ".join(f"{c:.1f}" for c in counts))
        if self.per_layer is not None:
            lines.append(f"  per-layer u/v/spikes, emulator vs lava-sim: {self.per_layer}")
        verdict = "PARITY HOLDS" if self.ok else "PARITY FAILS"
        tol = "exact" if self.tolerance == 0 else f"tolerance {self.tolerance}% of samples"
        lines.append(f"{verdict} ({tol})")
        return "\n".join(lines)


def _load_npy(path, model: netx.NetxModel) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise TnaError(f"{p}: no such input file; give a .npy of integer inputs")
    try:
        x = np.load(p, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise TnaError(f"{p}: not a readable .npy array ({str(e)[:100]}); save it with "
                       f"numpy.save") from None
    if x.dtype.kind not in "biuf" or (x.dtype.kind == "f" and not np.all(np.isfinite(x))):
        raise TnaError(f"{p}: inputs must be finite numbers, got dtype {x.dtype}")
    if x.dtype.kind == "f" and np.any(x != np.round(x)):
        raise TnaError(f"{p}: inputs must be integers (spikes 0/1 or graded levels)")
    in_shape = _input_shape(model)
    if x.ndim == len(in_shape) + 1:
        x = x[None]
    if tuple(x.shape[1:-1]) != tuple(in_shape) and \
            int(np.prod(x.shape[1:-1])) != int(np.prod(in_shape)):
        raise TnaError(f"{p}: input shape {x.shape} does not match the net's input "
                       f"{tuple(in_shape)} (+ time, optionally a leading batch axis)")
    return x.astype(np.int64)


def _input_shape(model: netx.NetxModel) -> tuple:
    if model.meta is not None and model.meta.input_shape:
        return tuple(model.meta.input_shape)
    first = model.layers[0]
    if first.type == "input":
        return tuple(first.shape)
    if first.type == "dense":
        return (first.weight.shape[1],)
    raise TnaError("the file has no input layer and no tna metadata; pass inputs whose shape "
                   "matches the first layer")


def _dataset_inputs(model: netx.NetxModel, cfg: RunConfig):
    from tna.data import DataConfig, load_data
    meta = model.meta
    name = cfg.dataset or (meta.dataset if meta else None)
    if not name:
        raise TnaError("this file has no tna metadata naming its data set; pass --dataset or "
                       "--input spikes.npy")
    dcfg = DataConfig(dataset=name, data_dir=cfg.data_dir, augment=False,
                      encoding=meta.encoding if meta else "rate",
                      input_bits=meta.input_bits if meta else 4,
                      timesteps=cfg.timesteps or (meta.timesteps if meta else 5))
    data = load_data(dcfg, batch_size=1000)
    loader = data.val if cfg.split == "val" and data.val is not None else data.test
    xs, ys, n = [], [], 0
    for x, y in loader.batches(0):
        xs.append(x.numpy())
        ys.append(y.numpy())
        n += len(y)
        if cfg.limit and n >= cfg.limit:
            break
    x, y = np.concatenate(xs), np.concatenate(ys)
    if cfg.limit:
        x, y = x[:cfg.limit], y[:cfg.limit]
    in_shape = _input_shape(model)
    if len(in_shape) == 1 and x.ndim == 5:
        x = x.reshape(len(x), -1, x.shape[-1])      # (C, H, W) order, as slayer flattens
    if tuple(x.shape[1:-1]) != tuple(in_shape):
        raise TnaError(f"data set {name} gives samples {x.shape[1:-1]} but the net expects "
                       f"{tuple(in_shape)}; pass the data set it was trained on")
    return x.astype(np.int64), y


def run(net_path, cfg: RunConfig = RunConfig()) -> RunResult:
    """Run `net_path` on the backends in `cfg.compare_list` and compare them pairwise."""
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
    if cfg.input:
        inputs, labels = _load_npy(cfg.input, model), None
        if cfg.limit:
            inputs = inputs[:cfg.limit]
    else:
        inputs, labels = _dataset_inputs(model, cfg)
    readout = cfg.readout or (meta.readout if meta else "spike")
    if meta is not None and inputs.shape[-1] != meta.timesteps:
        raise TnaError(f"inputs have T = {inputs.shape[-1]} steps but the net was trained with "
                       f"T = {meta.timesteps}")
    job = Job(net_path=str(net_path), model=model, inputs=inputs, readout=readout,
              input_message_bits=bits, layer_samples=cfg.layer_samples, progress=cfg.progress,
              lava_models=cfg.lava_models, loader=cfg.loader, skip_layers=cfg.skip_layers)
    names = _backends(cfg, model)
    # Lava forks its processes: run it before torch has started thread pools in this process
    # (forking a process with live OpenMP/BLAS threads can hang the children).
    order = sorted(names, key=lambda n: n not in ("lava-sim", "loihi2"))
    done: dict[str, BackendOutput] = {}
    for name in order:
        log(f"running {len(inputs)} samples on {name} ...")
        done[name] = ADAPTERS[name](job)
    outputs = {name: done[name] for name in names}
    parity = [compare(outputs[names[0]], outputs[b], labels) for b in names[1:]]
    accuracy = {}
    if labels is not None:
        accuracy = {k: 100.0 * float((o.logits.argmax(1) == labels).mean())
                    for k, o in outputs.items()}
    counts = {k: [float(c.mean()) for c in o.layer_counts] for k, o in outputs.items()
              if o.layer_counts}
    per_layer = None
    if cfg.per_layer:
        per_layer = _per_layer(net_path, model, inputs[:cfg.layer_samples], bits, cfg.loader,
                               cfg.skip_layers)
    result = RunResult(net=str(net_path), backend=cfg.backend, samples=len(inputs),
                       outputs=outputs, parity=parity, accuracy=accuracy, layer_counts=counts,
                       tolerance=cfg.tolerance, per_layer=per_layer,
                       meta=meta.to_dict() if meta else {})
    if cfg.save_output:
        main = outputs.get(cfg.backend) or outputs[names[-1]]
        _save_npy(cfg.save_output, main.spikes)
        if main.voltage is not None:
            p = Path(cfg.save_output)
            _save_npy(p.with_name(p.stem + "_voltage.npy"), main.voltage)
    if cfg.report:
        with atomic_path(cfg.report) as tmp:
            Path(tmp).write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return result


def _backends(cfg: RunConfig, model: netx.NetxModel) -> list:
    """The backends to run: `cfg.compare_list`; without --compare, a net the slayer reference
    cannot represent (bias, delays, other neuron types) is compared with the emulator instead,
    and one neither can run runs on its backend alone."""
    names = cfg.compare_list
    if cfg.compare is not None or names[0] != "reference" or len(names) < 2:
        return names
    from tna.reference import unsupported as reference_unsupported
    from tna.sim.emulator import unsupported as emulator_unsupported
    if reference_unsupported(model) is None:
        return names
    partner = [] if emulator_unsupported(model) or cfg.backend == "emulator" else ["emulator"]
    return partner + [cfg.backend]


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
