"""netx -> NIR: the exported net's integers as NIR's continuous-time floats, exactly.

Every value is chosen so that `tna.nir.read` gives back the same integers (see the table in
`tna.nir`): weights w_int / 64 are exact in float32; decays come back by rounding
4096 * dt / tau; v_threshold = vThMant / 64 is exact. With the current-first Euler reading of
`tna.nir.semantics`, the graph's float semantics are slayer's float semantics of the file.
"""
from __future__ import annotations

import json
import math
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from tna import netx
from tna.atomic import atomic_path
from tna.console import log
from tna.errors import TnaError
from tna.nir.config import DEFAULT_DT, FORMAT_VERSION

# A decay of 0 (no leak) has tau = inf; write tau = dt * 2^24 instead: finite (so r and w_in
# stay finite) and 4096 * 2^-24 rounds back to 0.
ZERO_DECAY_FRACTION = 2.0**-24
DISCRETISATION = ("forward Euler per step dt, current first: I += dt/tau_syn (w_in x - I); "
                  "v += dt/tau_mem (v_leak + r I - v); spike when v > v_threshold, v = v_reset")


def _fraction(decay: int) -> float:
    """Decay per step as a fraction; 0 becomes ZERO_DECAY_FRACTION (see above)."""
    return decay / netx.P_SCALE if decay else ZERO_DECAY_FRACTION


def _neuron(layer: netx.Layer, dt: float, gain: float, readout: bool):
    """CubaLIF (or CubaLI for the readout) with the layer's decays and threshold."""
    import nir
    n, shape = layer.neuron, tuple(layer.shape)
    a_syn, a_mem = _fraction(n.i_decay), _fraction(n.v_decay)

    def full(value):                 # NIR neuron parameters are per neuron
        return np.full(shape, value, dtype=np.float64)

    common = dict(tau_syn=full(dt / a_syn), tau_mem=full(dt / a_mem), r=full(1.0 / a_mem),
                  v_leak=full(0.0), w_in=full(gain / a_syn))
    if readout:
        return nir.CubaLI(**common)
    return nir.CubaLIF(**common, v_threshold=full(n.vth_mant / netx.W_SCALE),
                       v_reset=full(0.0))


def _pool_weight(layer: netx.Layer) -> float | None:
    """The constant weight q of a pool exported as a depthwise conv, else None."""
    w = np.asarray(layer.weight)
    c = layer.shape[0]
    if (layer.groups == c == w.shape[0] and w.shape[1] == 1 and tuple(layer.dilation) == (1, 1)
            and w.size and np.all(w == w.reshape(-1)[0]) and w.reshape(-1)[0] != 0):
        return float(w.reshape(-1)[0])
    return None


def _dense(i, layer, shape, dt, readout):
    import nir
    w = np.asarray(layer.weight, dtype=np.float32) / np.float32(netx.W_SCALE)
    yield f"layer{i}_dense", nir.Affine(weight=w, bias=np.zeros(w.shape[0], np.float32))
    yield f"layer{i}_cuba", _neuron(layer, dt, 1.0, readout)


def _conv(i, layer, shape, dt, readout):
    import nir
    q = _pool_weight(layer)
    if q is not None:
        yield f"layer{i}_pool", nir.SumPool2d(kernel_size=np.array(layer.kernel_size),
                                              stride=np.array(layer.stride),
                                              padding=np.array(layer.padding))
        yield f"layer{i}_cuba", _neuron(layer, dt, q / netx.W_SCALE, readout)
        return
    w = np.asarray(layer.weight, dtype=np.float32) / np.float32(netx.W_SCALE)
    yield f"layer{i}_conv", nir.Conv2d(
        input_shape=tuple(int(s) for s in shape[1:]), weight=w, stride=tuple(layer.stride),
        padding=tuple(layer.padding), dilation=tuple(layer.dilation), groups=int(layer.groups),
        bias=np.zeros(w.shape[0], np.float32))
    yield f"layer{i}_cuba", _neuron(layer, dt, 1.0, readout)


def _flatten(i, layer, shape, dt, readout):
    import nir
    yield f"layer{i}_flatten", nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0)


_TO_NIR = {"dense": _dense, "conv": _conv, "flatten": _flatten}


def _input_shape(model: netx.NetxModel) -> tuple:
    first = model.layers[0]
    if first.type == "input":
        shape = tuple(first.shape)
    elif model.meta is not None and model.meta.input_shape:
        shape = tuple(model.meta.input_shape)
    else:
        raise TnaError("the net has no input layer and no tna metadata giving its input shape")
    nxt = next((l for l in model.layers if l.type != "input"), None)
    if nxt is not None and nxt.type == "dense" and len(shape) > 1:
        shape = (int(np.prod(shape)),)      # netx's dense layers flatten their input
    return shape


def _out_shape(layer: netx.Layer, shape: tuple) -> tuple:
    if layer.type == "flatten":
        return (int(np.prod(shape)),)
    return tuple(int(s) for s in layer.shape)


def _graph_metadata(model: netx.NetxModel, dt: float) -> dict:
    d = {"format": "tna", "format_version": FORMAT_VERSION, "dt": float(dt),
         "discretisation": DISCRETISATION,
         "weight_scale": "netx weight = 64 * NIR weight * w_in * dt / tau_syn"}
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
        readout_rule=("sum over the T steps of the Output's voltage (CubaLI)"
                      if meta.readout == "voltage" else "spike count over the T steps"),
        tna_metadata=json.dumps(meta.to_dict()))
    return d


def to_graph(model: netx.NetxModel, dt: float = DEFAULT_DT):
    """The `nir.NIRGraph` of a netx model (see the table in `tna.nir`)."""
    import nir
    if not (math.isfinite(dt) and dt > 0):
        raise TnaError(f"dt = {dt!r}: seconds per time step, a finite number > 0")
    netx.validate_or_raise(model)
    neuron_ids = [i for i, l in enumerate(model.layers) if l.neuron is not None]
    if not neuron_ids:
        raise TnaError("the net has no neuron layer, so no NIR graph to write")
    voltage = model.meta is not None and model.meta.readout == "voltage"
    shape = _input_shape(model)
    nodes, edges = {"input": nir.Input(input_type={"input": np.array(shape)})}, []
    for i, layer in enumerate(model.layers):
        if layer.type == "input":
            continue
        if layer.bias is not None or layer.delay is not None:
            raise TnaError(f"layer/{i}: netx bias and axonal delays have no NIR equivalent "
                           f"here (nets tna trains have none)")
        readout = (voltage and i == neuron_ids[-1]
                   and layer.neuron.vth_mant == netx.NON_SPIKING_VTH_MANT)
        for name, node in _TO_NIR[layer.type](i, layer, shape, dt, readout):
            edges.append((list(nodes)[-1], name))
            nodes[name] = node
        shape = _out_shape(layer, shape)
    edges.append((list(nodes)[-1], "output"))
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    try:
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=_graph_metadata(model, dt))
    except ValueError as e:        # NIR's type check: the layers do not chain
        raise TnaError(f"the net's layers do not chain as a NIR graph ({e})") from None


def write_graph(graph, path) -> Path:
    """`nir.write` to a temporary name, then rename."""
    import nir
    with atomic_path(path) as tmp:
        nir.write(tmp, graph)
    return Path(path)


def _is_netx(path: Path) -> bool:
    import h5py
    try:
        with h5py.File(path, "r") as f:
            return "layer" in f
    except OSError:
        return False


def export_nir(checkpoint, cfg, dt: float = DEFAULT_DT) -> Path:
    """Export a run / checkpoint (as `tna export` does) or convert a .net file, to NIR at
    `cfg.out`; then check that `nir.read` loads it and that it converts back to the same net."""
    src = Path(checkpoint)
    if src.is_file() and _is_netx(src):
        model, what = netx.read_net(src), f"{src}"
    else:     # the netx export, to a temporary file: the NIR graph is made from its integers
        from tna.export import export
        with tempfile.TemporaryDirectory(prefix="tna-nir-") as tmp:
            model = netx.read_net(export(checkpoint, replace(cfg, out=str(Path(tmp) / "m.net"))))
        what = "the net above"
    graph = to_graph(model, dt)
    out = write_graph(graph, cfg.out)
    _check_round_trip(model, out)
    log(f"wrote {out}: {what} as a NIR graph of {len(graph.nodes)} nodes, dt = {dt:g} s "
         f"(nir.read loads it and it converts back to the same netx integers)")
    return out


def _check_round_trip(model: netx.NetxModel, path: Path) -> None:
    """The written graph reads back (NIR's type check on) to the same netx integers."""
    from tna.nir.read import read_graph, to_netx
    back, _ = to_netx(read_graph(path, type_check=True), where=str(path))
    same = len(back.layers) == len(model.layers)
    for a, b in zip(model.layers, back.layers):
        same = same and a.type == b.type and tuple(a.shape) == tuple(b.shape)
        if a.neuron is not None:
            same = same and b.neuron is not None and (a.neuron.i_decay, a.neuron.v_decay,
                                                      a.neuron.vth_mant) == \
                (b.neuron.i_decay, b.neuron.v_decay, b.neuron.vth_mant)
        if a.weight is not None:
            same = same and b.weight is not None and np.array_equal(a.weight, b.weight)
    if not same:
        raise TnaError(f"{path}: the graph does not convert back to the same netx layers; "
                       f"please report this as a tna bug")
