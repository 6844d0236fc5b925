"""`tna inspect`: what a netx file costs on Loihi 2, layer by layer.

Weight bits and exponents are those Lava's synapses get, with each loader (tna.netx.weight_bits):
unmodified netx puts dense layers through its `optimize_weight_bits` (so {-64, 0, 64} becomes
2-bit weights) and loads conv layers with 8-bit weights whatever their values; tna's loader
(tna.lava.net, what `tna run` uses) optimises conv layers too. Synaptic memory = weights
stored * weight bits (a conv kernel is stored once). With data, activity is counted on tna's
emulator (which equals Lava bit for bit): spikes per inference per layer and synaptic
operations (one per spike per synapse it drives). Then the Loihi 2 estimate (tna.estimate):
cores, chips, and with data time and energy per inference.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tna import netx
from tna.console import count as plural


def min_bits(layer: netx.Layer) -> int:
    """Bits the weight values need (sign included), independent of how netx loads them."""
    if layer.weight is None:
        return 0
    w = np.unique(np.asarray(layer.weight).astype(int))
    nz = np.abs(w[w != 0])
    if nz.size == 0:
        return 0
    if np.all(nz == nz[0]):       # {-m, 0, m}: ternary (2 bits) or {0, m}: binary
        return 2 if (w < 0).any() and (w > 0).any() else 1
    g = np.gcd.reduce(nz)
    span = int(np.abs(w // g).max())
    return int(np.ceil(np.log2(span + 1))) + int((w < 0).any())


def _inputs(model: netx.NetxModel, dataset, limit, data_dir, inputs=None) -> tuple:
    """(integer inputs (N, ..., T), their message bits): `limit` samples of `dataset` (default:
    the file's), or of the .npy `inputs['input']` (`inputs` holds RunConfig's input,
    input_layout and input_message_bits)."""
    from tna.deploy.config import RunConfig
    from tna.deploy.inputs import dataset_inputs, load_npy
    inputs = inputs or {}                # --input, --input-layout, --input-message-bits
    cfg = RunConfig(dataset=dataset, data_dir=data_dir, limit=limit, backend="emulator",
                    **inputs)
    bits = cfg.input_message_bits
    if bits is None:
        bits = model.meta.input_message_bits if model.meta else 0
    if cfg.input:
        return load_npy(cfg.input, model, cfg.input_layout, bits)[:limit], bits
    return dataset_inputs(model, cfg)[0], bits


def _activity(model: netx.NetxModel, dataset, limit, data_dir, inputs, loader,
              skip_layers=0):
    """Spikes, synaptic ops and neuron updates per inference, counted on the emulator (equal
    to Lava bit for bit: tna.estimate.activity), of what netx runs with `skip_layers`;
    layers numbered as in the file."""
    from tna.console import log
    from tna.estimate import count
    x, bits = _inputs(model, dataset, limit, data_dir, inputs)
    run, bits = netx.skip_layers(model, skip_layers, bits)
    log(f"measuring spikes and synaptic ops on {plural(len(x), 'sample')} with tna's "
        f"emulator ...")
    activity = count(run, x, input_message_bits=bits, loader=loader)
    return activity.renumbered(len(model.layers) - len(run.layers))


def costs(path, dataset=None, measure=False, limit=200, data_dir=None, inputs=None,
          estimate_cfg=None, skip_layers=0) -> dict:
    """What `path` costs on Loihi 2, as numbers: one dict per layer and the totals.

    Memory in bits: `mem_bits` as unmodified netx loads the weights (`bits`, `exp`),
    `tna_mem_bits` as tna's loader does (`tna_bits`, `tna_exp`), `needed_bits` at the bits their
    values need. With `measure`, spikes and synaptic ops per inference (every synapse a spike
    drives, zero weights included), counted on `limit` samples of `dataset`, or of the .npy
    `inputs['input']` (`inputs` holds RunConfig's input, input_layout and input_message_bits).
    `loihi2`: the Loihi 2 fit and cost estimate (tna.estimate, `estimate_cfg`'s budgets), with
    time and energy when measured. `skip_layers` (netx's) applies to the activity and the
    estimate: what netx runs."""
    from tna.estimate import EstimateConfig, estimate
    estimate_cfg = estimate_cfg or EstimateConfig()
    model = netx.read_net(path)
    layers = []
    for layer in model.layers:
        bits, exp = netx.weight_bits(layer, "netx")
        tna_bits, tna_exp = netx.weight_bits(layer, "tna")
        stored = layer.num_synapses
        if layer.type == "conv":
            stored = int(np.asarray(layer.weight).size)   # conv stores the kernel once
        layers.append({"type": layer.type, "shape": list(layer.shape),
                       "neurons": layer.num_neurons, "synapses": layer.num_synapses,
                       "bits": bits, "needs": min_bits(layer) if bits else 0, "exp": exp,
                       "mem_bits": stored * bits, "tna_bits": tna_bits, "tna_exp": tna_exp,
                       "tna_mem_bits": stored * tna_bits,
                       "needed_bits": stored * (min_bits(layer) if bits else 0)})
    out = {"model": model, "layers": layers,
           "neurons": sum(r["neurons"] for r in layers),
           "synapses": sum(r["synapses"] for r in layers),
           "mem_bits": sum(r["mem_bits"] for r in layers),
           "tna_mem_bits": sum(r["tna_mem_bits"] for r in layers),
           "needed_bits": sum(r["needed_bits"] for r in layers)}
    activity = None
    if measure:
        activity = _activity(model, dataset, limit, data_dir, inputs, estimate_cfg.loader,
                             skip_layers)
        for i, a in activity.layers.items():
            layers[i]["spikes"], layers[i]["synops"] = a.spikes, a.synops
        out.update(samples=activity.samples, spikes=activity.spikes, synops=activity.synops)
    out["loihi2"] = estimate(model, estimate_cfg, activity, skip_layers)
    return out


def inspect_net(path, dataset=None, measure=False, limit=200, data_dir=None,
                inputs=None, loihi2=False, estimate_cfg=None, report=None,
                skip_layers=0) -> str:
    """`tna inspect`'s text: the per-layer table, then the Loihi 2 estimate (its table with
    `loihi2`, else one line); `report` also writes every number as JSON."""
    cost = costs(path, dataset, measure, limit, data_dir, inputs, estimate_cfg, skip_layers)
    model = cost["model"]
    if report:
        _write_report(report, path, cost)
    rows = []
    for i, r in enumerate(cost["layers"]):
        b = r["bits"]
        rows.append([f"{i}", r["type"], "x".join(str(s) for s in r["shape"]),
                     f"{r['neurons']:,}", f"{r['synapses']:,}",
                     f"{b}" if b else "-", f"{r['tna_bits']}" if b else "-",
                     f"{r['needs']}" if b else "-", f"{r['mem_bits']:,}" if b else "-",
                     f"{r['tna_mem_bits']:,}" if b else "-"])
        if measure:
            rows[-1] += ([f"{r['spikes']:,.1f}", f"{r['synops']:,.0f}"] if "spikes" in r
                         else ["-", "-"])
    head = ["layer", "type", "shape", "neurons", "synapses", "bits netx", "bits tna", "needs",
            "mem netx (bits)", "mem tna (bits)"]
    extra_head = ["spikes/inf", "synops/inf"] if measure else []
    tot = {"neurons": cost["neurons"], "synapses": cost["synapses"], "mem": cost["mem_bits"],
           "tna": cost["tna_mem_bits"]}
    table = [head + extra_head] + rows
    widths = [max(len(r[c]) for r in table) for c in range(len(table[0]))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in table]
    lines.append(f"total: {tot['neurons']:,} neurons, {tot['synapses']:,} synapses; synaptic "
                 f"memory {tot['tna']:,} bits ({tot['tna'] / 8 / 1024:,.1f} KiB) with tna's "
                 f"loader (tna run), {tot['mem']:,} bits ({tot['mem'] / 8 / 1024:,.1f} KiB) "
                 f"with unmodified netx")
    if measure:
        source = (inputs or {}).get("input") or dataset or model.meta.dataset
        lines.append(f"per inference ({plural(cost['samples'], 'sample')} of {source}): "
                     f"{cost['spikes']:,.0f} spikes, {cost['synops']:,.0f} synaptic ops")
    if model.meta is not None:
        m = model.meta
        acc = "" if m.reference_accuracy is None else (
            f", reference accuracy {m.reference_accuracy:.2f}% ({m.reference_split})")
        named = f"{m.dataset}, " if m.dataset else ""      # empty: not recorded in the file
        lines.append(f"tna metadata: {named}T={m.timesteps}, {m.encoding} input "
                     f"({m.input_bits}-bit, message bits {m.input_message_bits}), readout "
                     f"{m.readout}, weights {m.weights}{acc}")
    lines.append("note: 'bits' is Lava's num_weight_bits, which leaves out the sign of a "
                 "layer with weights of both signs; 'needs' is the bits the values need, sign "
                 "included, so it can be one more")
    if any(layer.type == "conv" for layer in model.layers):
        lines.append("note: unmodified netx loads conv layers with 8-bit weights whatever "
                     "their values; tna's loader (tna run) gives them netx's dense weight-bit "
                     "rule")
    est = cost["loihi2"]
    lines.append(est.summary() if loihi2 else
                 f"{est.brief()} (tna inspect --loihi2 for each layer)")
    return "\n".join(lines)


def _write_report(path, net, cost) -> None:
    import json

    from tna.atomic import atomic_path
    d = {k: v for k, v in cost.items() if k not in ("model", "loihi2")}
    d = {"net": str(net), **d, "loihi2_estimate": cost["loihi2"].to_dict()}
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(d, indent=2) + "\n")
