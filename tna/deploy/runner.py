"""`run(net, RunConfig) -> RunResult`: run a netx file on backends and report their parity."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tna import netx
from tna.atomic import atomic_path
from tna.console import log
from tna.deploy.backends import BACKENDS, BackendOutput, Job
from tna.deploy.config import RunConfig
from tna.deploy.inputs import dataset_inputs, load_npy
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
    layer_counts: dict                 # backend name -> {layer name: mean spikes per sample}
                                       # over every sample of the run
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
            lines.append(f"  spikes per sample by layer, all {self.samples} samples ({name}): "
                         + ", ".join(f"{k} {c:.1f}" for k, c in counts.items()))
        if self.per_layer is not None:
            lines.append(f"  per-layer u/v/spikes, emulator vs lava-sim: {self.per_layer}")
        verdict = "PARITY HOLDS" if self.ok else "PARITY FAILS"
        tol = "exact" if self.tolerance == 0 else f"tolerance {self.tolerance}% of samples"
        lines.append(f"{verdict} ({tol})")
        return "\n".join(lines)


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
        inputs, labels = load_npy(cfg.input, model, cfg.input_layout, bits), None
        if cfg.limit:
            inputs = inputs[:cfg.limit]
    else:
        inputs, labels = dataset_inputs(model, cfg)
    readout = cfg.readout or (meta.readout if meta else "spike")
    if meta is not None and inputs.shape[-1] != meta.timesteps:
        raise TnaError(f"inputs have T = {inputs.shape[-1]} steps but the net was trained with "
                       f"T = {meta.timesteps}")
    job = Job(net_path=str(net_path), model=model, inputs=inputs, readout=readout,
              input_message_bits=bits, progress=cfg.progress,
              lava_models=cfg.lava_models, loader=cfg.loader, skip_layers=cfg.skip_layers)
    names = _backends(cfg, model)
    # Lava forks its processes: run it before torch has started thread pools in this process
    # (forking a process with live OpenMP/BLAS threads can hang the children).
    order = sorted(names, key=lambda n: not BACKENDS[n].forks)
    done: dict[str, BackendOutput] = {}
    for name in order:
        log(f"running {len(inputs)} samples on {name} ...")
        done[name] = BACKENDS[name].run(job)
    outputs = {name: done[name] for name in names}
    layer_names = {i: f"layer/{i + cfg.skip_layers}" for i in range(len(model.layers))}
    parity = [compare(outputs[names[0]], outputs[b], labels, layer_names) for b in names[1:]]
    accuracy = {}
    if labels is not None:
        accuracy = {k: 100.0 * float((o.logits.argmax(1) == labels).mean())
                    for k, o in outputs.items()}
    from tna.spikes import counts as spike_counts
    counts = {k: {layer_names[i]: float(spike_counts(p).mean()) for i, p in
                  sorted(o.layer_spikes.items())} for k, o in outputs.items()
              if len(o.layer_spikes) > 1}
    per_layer = None
    if cfg.per_layer:
        per_layer = _per_layer(net_path, model, inputs[:cfg.layer_samples], bits, cfg.loader,
                               cfg.skip_layers)
    result = RunResult(net=str(net_path), backend=cfg.backend, samples=len(inputs),
                       outputs=outputs, parity=parity, accuracy=accuracy, layer_counts=counts,
                       tolerance=cfg.tolerance, per_layer=per_layer,
                       meta=meta.to_dict() if meta else {})
    if cfg.save_input:
        _save_npy(cfg.save_input, inputs)
        if labels is not None:
            p = Path(cfg.save_input)
            _save_npy(p.with_name(p.stem + "_labels.npy"), labels)
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
