"""netx -> NIR: the exported net's integers as NIR's continuous-time floats, exactly.

Every value is chosen so that `tna.nir.read` gives back the same integers (see the table in
`tna.nir`): weights w_int / 64 are exact in float32; decays come back by rounding
4096 * dt / tau; v_threshold = vThMant / 64 is exact. With the current-first Euler reading of
`tna.nir.semantics`, the graph's float semantics are slayer's float semantics of the file.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from tna import netx, neurons
from tna.atomic import atomic_path
from tna.console import log
from tna.errors import TnaBug, TnaError
from tna.nir.config import DEFAULT_DT, FORMAT_VERSION, FORMS

# A decay of 0 (no leak) has tau = inf; write tau = dt * 2^24 instead: finite (so r and w_in
# stay finite) and 4096 * 2^-24 rounds back to 0.
ZERO_DECAY_FRACTION = 2.0**-24
DISCRETISATION = ("forward Euler per step dt, current first: I += dt/tau_syn (w_in x - I); "
                  "v += dt/tau_mem (v_leak + r I - v); spike when v > v_threshold, v = v_reset")


def _neuron(layer: netx.Layer, dt: float, gain: float, readout: bool, form: str):
    """The layer's neuron model through its normal form (tna.neurons.Discrete) as a CubaLIF;
    the voltage readout as a CubaLI (native form) or as a CubaLIF whose threshold (vThMant
    2^17 - 1) it never reaches (portable). A zero decay is written as ZERO_DECAY_FRACTION."""
    import nir
    shape = _out_shape(layer, ())
    d = netx.neuron_of(layer).normal_form(shape)      # not None: to_graph checked
    a_syn = np.where(d.a_syn == 0, ZERO_DECAY_FRACTION, d.a_syn)
    a_mem = np.where(d.a_mem == 0, ZERO_DECAY_FRACTION, d.a_mem)

    def full(value):                 # NIR neuron parameters are per neuron
        return np.broadcast_to(np.asarray(value, dtype=np.float64), shape).copy()

    common = dict(tau_syn=full(dt / a_syn), tau_mem=full(dt / a_mem), r=full(d.g_mem / a_mem),
                  v_leak=full(d.bias / a_mem + _v_leak(layer, a_mem)),
                  w_in=full(gain * d.g_syn / a_syn))
    if readout and form == "native":
        return nir.CubaLI(**common)
    return nir.CubaLIF(**common, v_threshold=full(d.threshold), v_reset=full(d.v_reset))


def _one_step_current(layer: netx.Layer) -> bool:
    """Whether the layer's current lasts one step (its normal form's a_syn is 1)."""
    d = netx.neuron_of(layer).normal_form((1,))
    return bool(np.all(d.a_syn == 1.0))


def _bias_in_synapse(layer: netx.Layer) -> bool:
    """netx adds `bias` to v every step. When the current lasts one step NIR's synapse bias
    does exactly that (v += I = W x + b); otherwise it is written as v_leak."""
    return _one_step_current(layer)


def _bias(layer: netx.Layer, n_out: int) -> np.ndarray:
    """The synapse's NIR bias: netx bias / 64 per output (row or channel), else zeros."""
    if layer.bias is None or not _bias_in_synapse(layer):
        return np.zeros(n_out, np.float32)
    b = np.asarray(layer.bias, np.float64).reshape(-1)
    return np.broadcast_to(b / netx.W_SCALE, (n_out,)).astype(np.float32)


def _v_leak(layer: netx.Layer, a_mem: np.ndarray):
    """v_leak carrying netx's bias when the synapse cannot: v += a_mem (v_leak - v) adds
    a_mem * v_leak each step, so v_leak = (bias / 64) / a_mem (per neuron, or per channel)."""
    if layer.bias is None or _bias_in_synapse(layer):
        return 0.0
    b = np.asarray(layer.bias, np.float64) / netx.W_SCALE
    b = b.reshape(-1, 1, 1) if layer.type == "conv" and b.size > 1 else b.reshape(-1)
    return np.broadcast_to(b, a_mem.shape) / a_mem


def _pool_weight(layer: netx.Layer) -> float | None:
    """The constant weight q of a pool exported as a depthwise conv, else None."""
    w = np.asarray(layer.weight)
    c = layer.shape[0]
    if (layer.groups == c == w.shape[0] and w.shape[1] == 1 and tuple(layer.dilation) == (1, 1)
            and w.size and np.all(w == w.reshape(-1)[0]) and w.reshape(-1)[0] != 0):
        return float(w.reshape(-1)[0])
    return None


def _dense(i, layer, shape, dt, readout, form):
    import nir
    w = np.asarray(netx.dense_matrix(layer), dtype=np.float32) / np.float32(netx.W_SCALE)
    yield f"layer{i}_dense", nir.Affine(weight=w, bias=_bias(layer, w.shape[0]))
    yield f"layer{i}_cuba", _neuron(layer, dt, 1.0, readout, form)


def _conv(i, layer, shape, dt, readout, form):
    import nir
    q = _pool_weight(layer)
    if q is not None and form == "native" and layer.bias is None:
        yield f"layer{i}_pool", nir.SumPool2d(kernel_size=np.array(layer.kernel_size),
                                              stride=np.array(layer.stride),
                                              padding=np.array(layer.padding))
        yield f"layer{i}_cuba", _neuron(layer, dt, q / netx.W_SCALE, readout, form)
        return
    w = np.asarray(layer.weight, dtype=np.float32) / np.float32(netx.W_SCALE)
    groups = int(layer.groups)
    if groups > 1:       # NIR 1.0.8's type check, snnTorch 1.0 and Norse 1.1 all take a conv's
        w, groups = ungroup(w, groups), 1      # input channels from weight.shape[1]: in/groups
    yield f"layer{i}_conv", nir.Conv2d(
        input_shape=tuple(int(s) for s in shape[1:]), weight=w, stride=tuple(layer.stride),
        padding=tuple(layer.padding), dilation=tuple(layer.dilation), groups=groups,
        bias=_bias(layer, w.shape[0]))
    yield f"layer{i}_cuba", _neuron(layer, dt, 1.0, readout, form)


def ungroup(w: np.ndarray, groups: int) -> np.ndarray:
    """A grouped conv weight (out, in/groups, kh, kw) as the same conv with groups 1: zeros
    between groups (tna.nir.read.regroup undoes it)."""
    out, cin = w.shape[0], w.shape[1]
    full = np.zeros((out, cin * groups) + w.shape[2:], w.dtype)
    per = out // groups
    for g in range(groups):
        full[g * per:(g + 1) * per, g * cin:(g + 1) * cin] = w[g * per:(g + 1) * per]
    return full


def _flatten(i, layer, shape, dt, readout, form):
    import nir
    yield f"layer{i}_flatten", nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0)


def input_as_synapse(layer: netx.Layer) -> netx.Layer:
    """An input layer with a neuron (an encoder: the data goes into its current every step,
    x << 6, as Lava's a_in; netx applies neither the layer's weight nor its bias) as NIR can
    say it: an identity synapse of integer weight 1 into the same neuron, a 1x1 conv for a
    (C, H, W) input, else dense."""
    shape = tuple(int(s) for s in layer.shape)
    if len(shape) == 3:
        c = shape[0]
        return netx.Layer("conv", shape, weight=np.eye(c, dtype=np.float32).reshape(c, c, 1, 1),
                          neuron=layer.neuron, in_channels=c, out_channels=c,
                          kernel_size=(1, 1), stride=(1, 1), padding=(0, 0), dilation=(1, 1),
                          groups=1)
    n = int(np.prod(shape))
    return netx.Layer("dense", (n,), weight=np.eye(n, dtype=np.float32), neuron=layer.neuron,
                      in_features=n, out_features=n)


def _input(i, layer, shape, dt, readout, form):
    synapse = input_as_synapse(layer)
    yield from _TO_NIR[synapse.type](i, synapse, shape, dt, readout, form)


_TO_NIR = {"dense": _dense, "conv": _conv, "flatten": _flatten, "input": _input}


def nir_layers(model: netx.NetxModel) -> list:
    """The netx layers the NIR graph of `model` reads back as: a shape-only input layer first,
    an input neuron as its identity synapse (input_as_synapse)."""
    layers = list(model.layers)
    first = netx.Layer("input", netx.input_shape(model))
    if layers and layers[0].type == "input":
        rest = layers[1:]
        return [first] + ([input_as_synapse(layers[0])] if layers[0].neuron else []) + rest
    return [first] + layers


def _graph_input_shape(model: netx.NetxModel) -> tuple:
    """The NIR Input's shape: the net's input (tna.netx.input_shape), flat before a dense
    first layer (netx's dense layers flatten their input)."""
    shape = netx.input_shape(model)
    nxt = next((layer for layer in model.layers if layer.type != "input"), None)
    if netx.has_input_neuron(model):        # its identity synapse takes the shape as it is
        nxt = None
    if nxt is not None and nxt.type == "dense" and len(shape) > 1:
        shape = (int(np.prod(shape)),)
    return shape


def _out_shape(layer: netx.Layer, shape: tuple) -> tuple:
    """A layer's output shape in the graph: flat after flatten and dense layers (netx may
    write a dense layer's shape as (n, 1, 1)), (C, H, W) after conv and input layers."""
    if layer.type == "flatten":
        return (int(np.prod(shape)),)
    if layer.type == "dense":
        return (int(np.prod(layer.shape)),)
    return tuple(int(s) for s in layer.shape)


def _graph_metadata(model: netx.NetxModel, dt: float, form: str, regroup: dict) -> dict:
    d = {"format": "tna", "format_version": FORMAT_VERSION, "dt": float(dt),
         "discretisation": DISCRETISATION, "form": form,
         "weight_scale": "netx weight = 64 * NIR weight * w_in * dt / tau_syn"}
    if regroup:        # grouped convs written with groups 1 (tna.nir.read.regroup undoes it)
        d["conv_groups"] = json.dumps(regroup)
    meta = model.meta
    if meta is None:
        return d
    direct = meta.encoding == "direct"
    d.update(
        dataset=meta.dataset, timesteps=int(meta.timesteps), encoding=meta.encoding,
        input_bits=int(meta.input_bits), input_message_bits=int(meta.input_message_bits),
        input_scale=(f"inputs are integers 0..{2**meta.input_bits - 1} (data * "
                     f"{2**meta.input_bits - 1}); the first layer's v_threshold carries the "
                     f"factor" if direct else "inputs are binary spikes"),
        weights=meta.weights, readout=meta.readout,
        readout_rule=(f"sum over the T steps of the last neuron's voltage ("
                      f"{'CubaLI' if form == 'native' else 'a CubaLIF that never spikes'})"
                      if meta.readout == "voltage" else "spike count over the T steps"),
        tna_metadata=json.dumps(meta.to_dict()))
    return d


def to_graph(model: netx.NetxModel, dt: float = DEFAULT_DT, form: str = "portable"):
    """The `nir.NIRGraph` of a netx model (see the table in `tna.nir`); `form` as in
    `tna.nir.config.FORMS`."""
    import nir
    if not (math.isfinite(dt) and dt > 0):
        raise TnaError(f"dt = {dt!r}: seconds per time step, a finite number > 0")
    if form not in FORMS:
        raise TnaError(f"form = {form!r}: choose one of {', '.join(FORMS)}")
    netx.validate_or_raise(model)
    neuron_ids = [i for i, layer in enumerate(model.layers) if netx.neuron_of(layer) is not None]
    if not neuron_ids:
        raise TnaError("the net has no neuron layer, so no NIR graph to write")
    for i in neuron_ids:
        n = netx.neuron_of(model.layers[i])
        if n.normal_form((1,)) is None:
            raise TnaError(f"layer/{i}: '{n.type}' neurons have no NIR form here (tna writes "
                           f"{', '.join(neurons.handled_by('normal_form'))} neurons as NIR's "
                           f"CubaLIF); this net cannot be exported to NIR")
    # the readout neuron (CubaLI in native form): tna's voltage readout, or an output layer
    # that never spikes, which `tna run` reads by its voltage (netx.silent_readout)
    voltage = (model.meta is not None and model.meta.readout == "voltage") or \
        netx.silent_readout(model) is not None
    shape = _graph_input_shape(model)
    nodes, edges = {"input": nir.Input(input_type={"input": np.array(shape)})}, []
    regroup = {}
    for i, layer in enumerate(model.layers):
        if layer.type == "input" and layer.neuron is None:
            continue
        if layer.delay is not None:
            raise TnaError(f"layer/{i}: netx axonal delays have no NIR equivalent (nets tna "
                           f"trains have none)")
        if layer.type not in _TO_NIR:
            raise TnaError(f"layer/{i}: a {layer.type} layer has no NIR form here (tna "
                           f"writes dense, conv and flatten layers)")
        readout = voltage and i == neuron_ids[-1] and netx.neuron_of(layer).never_spikes
        for name, node in _TO_NIR[layer.type](i, layer, shape, dt, readout, form):
            edges.append((list(nodes)[-1], name))
            nodes[name] = node
            if type(node).__name__ == "Conv2d" and int(node.groups) != int(layer.groups or 1):
                regroup[name] = int(layer.groups)
        shape = _out_shape(layer, shape)
    edges.append((list(nodes)[-1], "output"))
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    try:
        return nir.NIRGraph(nodes=nodes, edges=edges,
                            metadata=_graph_metadata(model, dt, form, regroup))
    except ValueError as e:        # NIR's type check: the layers do not chain
        raise TnaError(f"the net's layers do not chain as a NIR graph ({e})") from None


def write_graph(graph, path) -> Path:
    """`nir.write` to a temporary name, then rename."""
    import nir
    with atomic_path(path) as tmp:
        nir.write(tmp, graph)
    return Path(path)


def export_nir(checkpoint, cfg, dt: float = DEFAULT_DT, form: str = "portable") -> Path:
    """Export a run / checkpoint (as `tna export` does) or convert a .net file, to NIR at
    `cfg.out`; then check that `nir.read` loads it and that it converts back to the same net."""
    from tna.export.writer import build, refuse_existing
    refuse_existing(cfg.out, cfg.force)
    src = Path(checkpoint)
    if src.is_file() and netx.is_netx_file(src):
        model, what = netx.read_net(src), f"{src}"
    else:      # the netx net `tna export` would write, made from its integers
        model, summary = build(checkpoint, cfg)
        what = f"the base net of {checkpoint} ({summary})"
    graph = to_graph(model, dt, form)
    out = write_graph(graph, cfg.out)
    _check_round_trip(model, out)
    log(f"wrote {out}: {what} as a NIR graph of {len(graph.nodes)} nodes, dt = {dt:g} s, "
        f"{form} form (nir.read loads it and it converts back to the same netx integers)")
    return out


def _check_round_trip(model: netx.NetxModel, path: Path) -> None:
    """The written graph reads back (NIR's type check on) to the same netx integers."""
    from tna.nir.config import ImportConfig
    from tna.nir.read import read_graph, to_netx
    # T only fills the metadata of a graph without tna's (a foreign .net): any T will do here
    back, _ = to_netx(read_graph(path, type_check=True), ImportConfig(timesteps=1),
                      where=str(path))
    want = nir_layers(model)
    if len(back.layers) != len(want) or not all(
            _same_layer(a, b) for a, b in zip(want, back.layers)):
        raise TnaBug(f"{path}: the graph does not convert back to the same netx layers")


def _same_layer(a: netx.Layer, b: netx.Layer) -> bool:
    def arrays(x, y):                  # a scalar bias reads back as one value per output
        if (x is None) != (y is None):
            return False
        if x is None:
            return True
        x, y = (np.asarray(v, np.float64).reshape(-1) for v in (x, y))
        return x.size in (1, y.size) and np.array_equal(np.broadcast_to(x, y.shape), y)

    def neuron(layer):                 # as its normal form, which is what the graph holds
        n = netx.neuron_of(layer)
        d = None if n is None else n.normal_form((1,))
        return None if d is None else tuple(
            None if x is None else float(np.ravel(x)[0]) for x in (
                d.a_syn, d.g_syn, d.a_mem, d.g_mem, d.bias, d.threshold, d.v_reset))

    def shape(layer):                  # netx writes dense and flatten shapes flat or (n, 1, 1)
        s = tuple(int(v) for v in layer.shape)
        return s if layer.type in ("conv", "input") else (int(np.prod(s)),)
    conv = ("stride", "padding", "dilation", "groups") if a.type == "conv" else ()
    return (a.type == b.type and shape(a) == shape(b)
            and neuron(a) == neuron(b) and arrays(a.weight, b.weight)
            and arrays(_nonzero(a.bias), _nonzero(b.bias))
            and all(tuple(np.ravel(getattr(a, k))) == tuple(np.ravel(getattr(b, k)))
                    for k in conv))


def _nonzero(bias):
    """A bias of zeros is no bias (the graph writes none for it)."""
    return None if bias is None or not np.any(np.asarray(bias, np.float64)) else bias
