"""Export: a checkpoint's base network -> a netx HDF5 file.

What is written is exactly what the trained base computes, in Loihi integers:
- weights: slayer's 8-bit quantised weights * 64 (even integers in [-256, 254]); compressed
  hidden layers hold {-64, 0, 64}, which netx stores as 2-bit weights;
- average pools (which netx cannot load) become grouped convs with the pool's fixed weights;
- direct (graded) input: the data integers 0..2**input_bits-1 are fed as they are; the model
  saw them scaled by 1/(2**input_bits-1), so the first layer's threshold is scaled up by that
  factor instead (the only difference is the rounding of the decays, which the reference
  accuracy written to the file accounts for);
- a 'voltage' readout layer keeps the largest 17-bit threshold so it never spikes.
The file's `tna` group records T, encoding, input bits, readout, class names and the
reference accuracy of the exported integers, evaluated with slayer.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from tna import checkpoint as ckpt
from tna import metrics, netx
from tna.console import count, log
from tna.errors import TnaError
from tna.export.config import ExportConfig
from tna.neurons import Cuba
from tna.train.config import TrainConfig


def _int_weight(block) -> np.ndarray:
    """The integers Loihi gets: the forward pass's effective weight * 64."""
    syn = block.synapse
    with torch.no_grad():
        w = syn._pre_hook_fx(syn.weight, descale=True) if syn._pre_hook_fx else syn.weight * 64
    w = w.detach().cpu().double().numpy()
    return np.round(w.reshape(w.shape[:-1]) if w.ndim in (3, 5) else w).astype(np.float32)


def _neuron(block, vth_scale: int = 1) -> Cuba:
    return Cuba.from_slayer(block.neuron, vth_scale)


def _conv_layer(layer_spec, block, scale) -> netx.Layer:
    w = _int_weight(block)
    return netx.Layer(
        "conv", tuple(layer_spec.out_shape), weight=w.reshape(w.shape[:4]),
        neuron=_neuron(block, scale), in_channels=layer_spec.in_shape[0],
        out_channels=layer_spec.out, kernel_size=(layer_spec.kernel,) * 2,
        stride=(layer_spec.stride,) * 2, padding=(layer_spec.padding,) * 2,
        dilation=(1, 1), groups=1)


def _pool_layer(layer_spec, block, scale) -> netx.Layer:
    # A sum pool with fixed weight q is a depthwise conv whose kernel is all q.
    c, k = layer_spec.out, layer_spec.kernel
    q = float(_int_weight(block).reshape(-1)[0])
    return netx.Layer(
        "conv", tuple(layer_spec.out_shape), weight=np.full((c, 1, k, k), q, dtype=np.float32),
        neuron=_neuron(block, scale), in_channels=c, out_channels=c,
        kernel_size=(k, k), stride=(k, k), padding=(0, 0), dilation=(1, 1), groups=c)


def _dense_layer(layer_spec, block, scale) -> netx.Layer:
    w = _int_weight(block)
    return netx.Layer("dense", (layer_spec.out,), weight=w.reshape(w.shape[:2]),
                      neuron=_neuron(block, scale),
                      in_features=int(np.prod(layer_spec.in_shape)), out_features=layer_spec.out)


def _flatten_layer(layer_spec, block, scale) -> netx.Layer:
    return netx.Layer("flatten", (int(layer_spec.out), 1, 1))


# Model layer kind (tna.models.spec) -> its netx layer: (spec, slayer block, threshold scale).
_TO_NETX = {"conv": _conv_layer, "pool": _pool_layer, "dense": _dense_layer,
            "flatten": _flatten_layer}


def model_to_netx(model) -> list:
    """netx layers for an SNN (tna.models.snn.SNN), without metadata."""
    spec = model.spec
    input_max = round(1.0 / spec.input_scale)      # the first layer sees data / input_max
    # A shape-only input layer: netx takes the input shape from it (reversed to x, y, f).
    layers = [netx.Layer("input", tuple(int(v) for v in spec.layers[0].in_shape))]
    first = True
    for layer_spec, block in zip(spec.layers, model.blocks):
        # the first layer with weights carries the input scale in its threshold
        scale = input_max if first and layer_spec.kind != "flatten" else 1
        first = first and layer_spec.kind == "flatten"
        layers.append(_TO_NETX[layer_spec.kind](layer_spec, block, scale))
    return layers


def export(checkpoint, cfg: ExportConfig = ExportConfig()) -> Path:
    """Write the base network of `checkpoint` as a netx HDF5 file; return its path."""
    refuse_existing(cfg.out, cfg.force)
    nmodel, summary = build(checkpoint, cfg, loihi2=True)
    out = netx.write_net(nmodel, cfg.out)
    summary, _, loihi2 = summary.partition("\n")
    log(f"wrote {out}: {summary}")
    if cfg.verify:
        for line in weight_bits_report(out):
            log("  " + line)
    log("  " + loihi2)
    return out


def refuse_existing(out, force: bool) -> None:
    """An --out that exists is replaced only with --force (it may hold another model)."""
    if Path(out).exists() and not force:
        raise TnaError(f"{out} exists; pass --force to replace it, or choose another --out")


LOIHI2_SAMPLES = 500       # test samples the export's Loihi 2 estimate counts activity on


def build(checkpoint, cfg: ExportConfig = ExportConfig(), loihi2: bool = False) -> tuple:
    """(NetxModel with metadata, one-line summary) of a checkpoint's base network; with
    `loihi2`, the summary's second line is the Loihi 2 estimate (tna.estimate: cores, chips,
    energy per inference on the split's first LOIHI2_SAMPLES samples)."""
    path = ckpt.resolve(checkpoint)
    model, state = ckpt.load_model(path)
    _check_weight_mode(checkpoint, state, cfg)
    _say_which(checkpoint, path, state)          # only for an export that goes ahead
    data, split = _load_data(state, cfg)
    comp = _ternarize_after_training(model, state, cfg, data)
    nmodel = netx.NetxModel(layers=model_to_netx(model))
    _check_loadable(nmodel, model)
    file_acc, total = _file_accuracy(nmodel, model, state, split, cfg)
    if metrics.at_chance(file_acc, len(data.class_names)):
        log(f"warning: the exported net's accuracy {file_acc:.1f}% is at chance "
            f"({100 / len(data.class_names):.1f}%): "
            f"its checkpoint never learned; see the warnings in the run's result.json and "
            f"train again")
    model_acc = _model_accuracy(model, state, split, cfg)
    nmodel.meta = _metadata(model, state, cfg, data, comp, file_acc,
                            f"{split.split}:{total}", model_acc)
    checker = "tna's emulator (= the slayer reference, bit for bit)" \
        if cfg.check == "emulator" else "the slayer reference"
    summary = (f"{len(nmodel.layers)} layers, {nmodel.meta.weights} weights; accuracy "
               f"{file_acc:.2f}% on {split.split} ({count(total, 'sample')}) checked by "
               f"{checker}; the PyTorch model: {model_acc:.2f}%")
    if loihi2:
        summary += "\n" + _loihi2_line(nmodel, model, split, cfg)
    return nmodel, summary


def _loihi2_line(nmodel: netx.NetxModel, model, split, cfg: ExportConfig) -> str:
    """One line: the Loihi 2 estimate of the file, activity on the split's first samples."""
    import torch

    from tna.estimate import EstimateConfig, estimate
    from tna.estimate.activity import count as count_activity
    first_dense = model.spec.layers[0].kind == "dense"
    xs, n = [], 0
    for x, _ in split.batches(0):
        xs.append(x.flatten(1, 3) if first_dense and x.dim() == 5 else x)
        n += len(x)
        if n >= LOIHI2_SAMPLES:
            break
    x = torch.cat(xs)[:LOIHI2_SAMPLES].long()
    activity = count_activity(nmodel, x, input_message_bits=nmodel.meta.input_message_bits)
    return (f"{estimate(nmodel, EstimateConfig(), activity).brief()} (activity on "
            f"{count(len(x), 'sample')}; tna inspect --loihi2 for each layer)")


def _say_which(given, path: Path, state) -> None:
    """A run folder without best.pt exports its checkpoint.pt: say so, and how far it got."""
    if Path(given).is_dir() and path.name != "best.pt":
        tcfg, comp = _train_config(state), state.get("compression") or {}
        log(f"note: {given} has no best.pt (the run stopped before an epoch in its final weight "
            f"mode): exporting {path.name}, epoch {int(state.get('epoch', 0))} of "
            f"{tcfg.epochs}, weights {comp.get('mode', 'fp')}")


def _train_config(state) -> TrainConfig:
    """The checkpoint's training config, typed (TrainConfig.from_checkpoint)."""
    return TrainConfig.from_checkpoint(state["config"])


def _check_weight_mode(given, state, cfg: ExportConfig) -> None:
    """A ternary or binary run stopped before its compressed phase holds fp weights: refuse,
    naming the two ways on, rather than export a full-precision net silently."""
    tcfg, comp = _train_config(state), state.get("compression") or {}
    # a 1-epoch ternary run trains fp by design (tna.train.config: final_weights)
    want = state.get("final_weights") or tcfg.weights
    if want == "fp" or comp.get("mode") == want or (cfg.ternary and want == "ternary"):
        return
    start = tcfg.compress_after
    raise TnaError(f"{given}: a {want} run stopped at epoch {int(state.get('epoch', 0))}, before "
                   f"its {want} phase (from epoch {start + 1}), so "
                   f"its weights are still fp: resume it (tna train --resume {given})"
                   + (" or export it with --ternary to compress it now" if want == "ternary"
                      else ""))


def _load_data(state, cfg: ExportConfig):
    """The checkpoint's data set, as it was trained on (no augmentation); and the split the
    reference accuracy is measured on."""
    from tna.data import load_data
    data_cfg = ckpt.data_config(state)
    if cfg.data_dir is not None:
        data_cfg = _replace(data_cfg, data_dir=cfg.data_dir)
    data = load_data(_replace(data_cfg, augment=False, limit=cfg.limit), batch_size=1000)
    split = data.val if cfg.split == "val" and data.val is not None else data.test
    return data, split


def _ternarize_after_training(model, state, cfg: ExportConfig, data) -> dict:
    """With --ternary, compress an fp checkpoint now and report the accuracy it costs; returns
    the compression record (the checkpoint's own when it was compressed in training)."""
    from tna.quant import TernaryConfig, compression_scales, ternarize_
    tcfg = _train_config(state)
    comp = state.get("compression") or {}
    if cfg.ternary and comp.get("mode") == "binary":
        raise TnaError(f"{state['path']}: this checkpoint is binary; export it without --ternary")
    if not cfg.ternary or comp.get("mode") == "ternary":
        return comp
    delta = cfg.delta if cfg.delta is not None else tcfg.delta
    val = data.val or data.test
    before = metrics.percent(*metrics.evaluate(model, val))
    ternarize_(model, TernaryConfig(delta=delta, scale=tcfg.ternary_scale))
    after = metrics.percent(*metrics.evaluate(model, val))
    log(f"ternarised after training (delta {delta}): {val.split} accuracy "
        f"{before:.2f}% -> {after:.2f}% ({after - before:+.2f} points)")
    return {"mode": "ternary", "delta": delta, "scales": compression_scales(model)}


def _check_loadable(nmodel: netx.NetxModel, model) -> None:
    """tna's own exports meet netx's rules and Loihi 2's (no warnings either)."""
    problems = (netx.validate(nmodel, tuple(model.spec.layers[0].in_shape))
                + netx.loihi_warnings(nmodel))
    if problems:
        raise TnaError(f"the exported net would not load on Loihi: {problems[0]}")


def _file_accuracy(nmodel: netx.NetxModel, model, state, split, cfg: ExportConfig) -> tuple:
    """(accuracy %, samples) of the integers written, on the data integers Lava gets: with
    tna's emulator (default; it equals the slayer reference bit for bit, several times
    faster) or the slayer reference itself (--check reference)."""
    from tqdm import tqdm

    from tna.console import progress_enabled
    direct = _train_config(state).encoding == "direct"
    bits = cfg.input_message_bits if direct else 0
    first_dense = model.spec.layers[0].kind == "dense"
    if cfg.check == "reference":
        from tna.reference import ReferenceNet
        ref = ReferenceNet(nmodel, readout=model.spec.readout)

        def logits(x):
            return ref(x).logits
    else:
        from tna.sim.emulator import emulate

        def logits(x):
            res = emulate(nmodel, x.long(), input_message_bits=bits, record_layers=())
            out = res.out_voltage if model.spec.readout == "voltage" else res.out_spikes
            return out.long().flatten(1, -2).sum(-1)
    hits = total = 0
    for x, y in tqdm(split.batches(0), total=len(split), desc=cfg.check, leave=False,
                     disable=not progress_enabled(cfg.progress), file=sys.stderr):
        x = x.flatten(1, 3) if first_dense and x.dim() == 5 else x
        hits += metrics.correct(logits(x), y)
        total += len(y)
    return metrics.percent(hits, total), total


def _model_accuracy(model, state, split, cfg: ExportConfig) -> float:
    """The PyTorch model's accuracy on `split`: the run's own test figure when this is its
    best.pt on the whole test split (result.json), else measured."""
    import json
    path = Path(state["path"])
    result = path.with_name("result.json")
    if path.name == "best.pt" and split.split == "test" and cfg.limit is None \
            and not cfg.ternary and result.is_file():
        try:
            acc = json.loads(result.read_text()).get("test_acc")
        except ValueError:
            acc = None
        if isinstance(acc, (int, float)):
            return float(acc)
    hits, total = metrics.evaluate(model, split, progress=cfg.progress, desc="model")
    return metrics.percent(hits, total)


def _metadata(model, state, cfg: ExportConfig, data, comp: dict, ref_acc: float,
              reference_split: str, train_acc: float) -> netx.Metadata:
    from tna.quant import compression_of
    tcfg = _train_config(state)
    compressed = [i for i, b in enumerate(_weight_blocks(model)) if compression_of(b) != "8bit"]
    direct = tcfg.encoding == "direct"
    layer_ids = _netx_indices(model)
    return netx.Metadata(
        dataset=tcfg.dataset, class_names=list(data.class_names),
        timesteps=int(tcfg.timesteps), encoding=tcfg.encoding,
        input_shape=[int(s) for s in model.spec.layers[0].in_shape],
        input_bits=int(tcfg.input_bits),
        input_message_bits=cfg.input_message_bits if direct else 0,
        readout=model.spec.readout, reference_accuracy=ref_acc,
        reference_split=reference_split, checkpoint_sha256=ckpt.sha256(state["path"]),
        weights=comp.get("mode", "fp") if compressed else "fp",
        ternary_layers=[layer_ids[i] for i in compressed],
        extra={"model_accuracy": train_acc, "arch": model.spec.arch,
               "delta": comp.get("delta"), "weight_scales": comp.get("scales")})


def _weight_blocks(model) -> list:
    return [b for b in model.blocks if getattr(b, "synapse", None) is not None]


def _netx_indices(model) -> list:
    """netx layer index of each weight block (layer/0 is the input; flatten is a layer too)."""
    ids, k = [], 1
    for b in model.blocks:
        if getattr(b, "synapse", None) is not None:
            ids.append(k)
        k += 1
    return ids


def weight_bits_report(path) -> list[str]:
    """Load `path` with tna's netx loader and read each layer's weight bits back from Lava;
    name the bits unmodified netx gives where they differ."""
    from tna.lava.info import loaded_weight_bits
    layers = netx.read_net(path).layers
    lines = []
    for i, kind, bits, exp in loaded_weight_bits(path, "tna"):
        stock, _ = netx.weight_bits(layers[i], "netx")
        note = f" (unmodified netx: {stock}-bit)" if stock != bits else ""
        lines.append(f"layer/{i} {kind}: {bits}-bit weights, exponent {exp}{note}")
    return lines


def _replace(cfg, **kw):
    import dataclasses
    return dataclasses.replace(cfg, **kw)
