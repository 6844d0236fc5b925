"""`tna run m.nir`: import the graph to a temporary netx file, run it as `tna run` runs any
.net, then compare the quantised net with the graph's own float semantics (`simulate`).

The parity verdict and exit code are those of the backends (exact by default); the distance to
the float graph is reported next to them, since quantisation makes it non-zero in general.
"""
from __future__ import annotations

import dataclasses
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tna import netx
from tna.atomic import atomic_path
from tna.console import log
from tna.errors import TnaError
from tna.nir.config import ImportConfig
from tna.nir.read import Conversion, caveats, read_graph, resolve_dt, to_netx

FLOAT = "nir-float"


@dataclass
class NirRun:
    result: object                 # tna.deploy.runner.RunResult of the imported net
    conversion: Conversion
    float_parity: dict             # the quantised net vs the graph's float semantics

    @property
    def ok(self) -> bool:
        return self.result.ok

    def to_dict(self) -> dict:
        return {**self.result.to_dict(),
                "nir": {"quantisation": self.conversion.to_dict(), "float_vs_quantised":
                        self.float_parity}}

    def summary(self) -> str:
        p = self.float_parity
        lines = self.result.summary().splitlines()
        lines.insert(-1, f"  NIR float semantics (dt {self.conversion.dt:g} s) vs {p['b']}: "
                         f"predictions agree {p['prediction_agreement']}/{p['samples']} "
                         f"({p['prediction_agreement_pct']:.2f}%), readout off by "
                         f"{p['readout_median_relative_error']:.3g} (median sample; worst "
                         f"{p['readout_max_relative_error']:.3g}) of its largest value, "
                         f"{p['output_spike_values_differing']} output spike values differ")
        counts = p["layer_spikes_per_sample"]
        lines.insert(-1, "    spikes per sample by layer: float " + " ".join(
            f"{c:.1f}" for c in counts[FLOAT]) + " / quantised " + " ".join(
            f"{c:.1f}" for c in counts["quantised"]))
        for q in self.conversion.layers:
            lines.insert(-1, "    " + q.summary())
        return "\n".join(lines)


def _steps(cfg) -> int | None:
    """T for a graph without tna metadata: --timesteps, else the --input array's last axis."""
    if cfg.timesteps:
        return cfg.timesteps
    if cfg.input and Path(cfg.input).is_file():
        try:
            return int(np.load(cfg.input, mmap_mode="r", allow_pickle=False).shape[-1])
        except (ValueError, OSError, IndexError):
            return None       # the runner names the problem with the file
    return None


def _inputs(model: netx.NetxModel, cfg):
    """The inputs and labels `tna run` used, loaded the same way."""
    from tna.deploy.inputs import dataset_inputs, load_npy
    if cfg.input:
        bits = cfg.input_message_bits if cfg.input_message_bits is not None else \
            model.meta.input_message_bits
        x = load_npy(cfg.input, model, cfg.input_layout, bits)
        return (x[:cfg.limit] if cfg.limit else x), None
    return dataset_inputs(model, cfg)


def compare_float(flt, quant, conv: Conversion, labels, layer_counts: list) -> dict:
    """How far the quantised outputs `quant` (a BackendOutput) are from the float ones.

    `layer_counts`: the quantised net's mean spikes per sample by layer over every sample
    (any backend's that reads every layer: they agree when parity holds)."""
    n = len(quant.logits)
    if conv.readout == "voltage":
        f_logits = (flt.voltage * conv.out_scale[None, :, None]).sum(-1)
    else:
        f_logits = flt.spikes.sum(-1)
    q_logits = quant.logits.astype(np.float64)
    agree = int((f_logits.argmax(1) == q_logits.argmax(1)).sum())
    top = float(np.abs(f_logits).max()) or 1.0
    per_sample = np.abs(q_logits - f_logits).max(1) / top
    row = {"a": FLOAT, "b": quant.name, "samples": n, "prediction_agreement": agree,
           "prediction_agreement_pct": 100.0 * agree / max(n, 1),
           "readout_max_relative_error": float(per_sample.max()) if n else 0.0,
           "readout_median_relative_error": float(np.median(per_sample)) if n else 0.0,
           "output_spike_values_differing": int((flt.spikes != quant.spikes).sum()),
           "layer_spikes_per_sample": {FLOAT: [float(c.mean()) for c in flt.layer_counts],
                                       "quantised": layer_counts}}
    if labels is not None:
        row[f"accuracy_{FLOAT}"] = 100.0 * float((f_logits.argmax(1) == labels).mean())
        row[f"accuracy_{quant.name}"] = 100.0 * float((q_logits.argmax(1) == labels).mean())
    return row


def run_nir(path, cfg, dt: float | None = None) -> NirRun:
    from tna.deploy import run
    from tna.nir.simulate import simulate
    graph = read_graph(path)
    dt = resolve_dt(graph, dt, str(path))
    icfg = ImportConfig(dt=dt, timesteps=_steps(cfg), input_message_bits=cfg.input_message_bits or 0)
    model, conv = to_netx(graph, icfg, where=str(path))
    for note in caveats(graph):
        log(note)
    with tempfile.TemporaryDirectory(prefix="tna-nir-") as tmp:
        net = netx.write_net(model, Path(tmp) / f"{Path(path).stem}.net")
        result = run(net, dataclasses.replace(cfg, report=None))
    result.net = str(path)
    inputs, labels = _inputs(model, cfg)
    bits = cfg.input_message_bits if cfg.input_message_bits is not None else \
        model.meta.input_message_bits
    if bits == 0 and inputs.max(initial=0) > 1:
        log("warning: inputs above 1 go to Lava as binary spikes (input message bits 0) but "
             "to the float graph as values; pass --input-message-bits 8 for graded input")
    quant = result.outputs.get(cfg.backend) or list(result.outputs.values())[-1]
    if len(quant.logits) != len(inputs):
        raise TnaError(f"{path}: the run used {len(quant.logits)} samples, the float "
                       f"comparison loaded {len(inputs)}")
    flt = simulate(graph, inputs, dt)
    counts = result.layer_counts.get(quant.name) or next(iter(result.layer_counts.values()), {})
    row = compare_float(flt, quant, conv, labels, list(counts.values()))
    out = NirRun(result, conv, row)
    if cfg.report:
        with atomic_path(cfg.report) as tmp:
            Path(tmp).write_text(json.dumps(out.to_dict(), indent=2) + "\n")
    return out
