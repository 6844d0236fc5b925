"""NIR -> netx: a chain of NIR nodes as Loihi CUBA integers.

tna reads chains Input -> [Flatten] -> (synapse -> neuron | Flatten)... -> Output, where a synapse
is Affine, Linear, Conv2d, SumPool2d or AvgPool2d and a neuron CubaLIF, CubaLI, LIF, LI or IF
(read per `tna.nir.semantics`). Each synapse + neuron pair becomes one netx dense or conv layer;
a Flatten right after the Input flattens the input itself (netx dense layers take flat input);
a pool right after a conv is folded into it (fold_pool). Biases and v_leak become netx's voltage
bias (where the synapse bias reaches v in one step). Anything else (other node types, branches,
cycles, v_reset other than 0) is refused with one line naming the node.

The quantisation rule, per layer (dt from the graph's metadata or --dt):
  decays   iDecay = round(4096 * a_syn), vDecay = round(4096 * a_mem); one value per layer.
  weights  W_eff = W * g_syn * g_mem, per output neuron (per channel for convs), so that the
           current is in voltage units (Loihi's g_mem = 1).
  exact    when every W_eff * 64 and the (one) v_threshold * 64 are integers (relative 1e-6) in
           netx's ranges: w_int = W_eff * 64, vThMant = v_threshold * 64. tna's own graphs are.
  else     normalise by each neuron's threshold (1 for CubaLI/LI), M = max |W_eff / theta|;
           vThMant = k = min(floor(254 / M), 2^17 - 1) and w_int = the even integer nearest
           k * W_eff / theta, clipped to [-256, 254] (slayer's 8-bit grid). The threshold is
           then exact and each weight is off by at most 1/k of its neuron's threshold.
           CubaLI/LI (never spike): k = 254 / M and vThMant = 2^17 - 1.
  voltage  Lava's v (integer state units) = 64 * k / theta * v_NIR per neuron, 4096 * v_NIR
           when exact.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tna import netx
from tna.errors import TnaError
from tna.nir.config import ImportConfig
from tna.neurons import Cuba, Discrete
from tna.nir.semantics import NEURONS, discrete

SYNAPSES = ("Affine", "Linear", "Conv2d", "SumPool2d", "AvgPool2d")
SUPPORTED = ("Input", "Output", "Flatten") + SYNAPSES + NEURONS
EXACT_RTOL = 1e-6          # relative distance from Loihi's grid still read as exact (float rounding)
EVEN_WEIGHT_MAX = 254      # largest even weight of slayer's 8-bit grid ([-256, 254], step 2)

# What nir.read and h5py raise on damaged or incomplete files.
_DAMAGED = (KeyError, ValueError, TypeError, IndexError, OSError, AssertionError,
            AttributeError, RuntimeError)


@dataclass
class LayerQuant:
    """How one netx layer was made from its NIR nodes."""
    layer: int                       # index in the netx model
    nodes: list                      # NIR node names
    exact: bool
    spiking: bool                    # False: the readout (CubaLI, LI), whose vThMant is the max
    vth_mant: int
    weight_error: float              # max |w_int / k - W_eff / theta|: units of the threshold,
                                     # or of the largest weight when not spiking
    weights_clipped: int
    i_decay_error: float             # |iDecay / 4096 - a_syn|
    v_decay_error: float

    def summary(self) -> str:
        names = " + ".join(self.nodes)
        if self.exact:
            return f"layer/{self.layer} ({names}): exact"
        clip = f", {self.weights_clipped} weights clipped" if self.weights_clipped else ""
        unit = "the threshold" if self.spiking else "the largest weight (never spikes)"
        return (f"layer/{self.layer} ({names}): vThMant {self.vth_mant}, 8-bit weights off by "
                f"≤ {self.weight_error:.3g} of {unit}{clip}; decays off by "
                f"{self.i_decay_error * 4096:.2f}/4096 (current), "
                f"{self.v_decay_error * 4096:.2f}/4096 (voltage)")


@dataclass
class Conversion:
    """What `to_netx` did: dt, the rule per layer, and the output layer's voltage scale."""
    dt: float
    readout: str                               # 'voltage' (last node CubaLI/LI) or 'spike'
    layers: list = field(default_factory=list)  # LayerQuant per neuron layer
    out_scale: np.ndarray | None = None         # Lava v units per NIR v unit, per output neuron

    @property
    def exact(self) -> bool:
        return all(q.exact for q in self.layers)

    def to_dict(self) -> dict:
        return {"dt": self.dt, "readout": self.readout, "exact": self.exact,
                "layers": [vars(q) for q in self.layers]}


# --------------------------------------------------------------------------- reading the file

def read_graph(path, type_check: bool = False):
    """`nir.read` with clean errors: unsupported nodes are named before NIR parses them.

    NIR's own type check is off by default: graphs from PyTorch exporters often fail it
    (e.g. Flatten start_dim=1), and `to_netx` checks every shape itself.
    """
    import h5py
    path = Path(path)
    if not path.is_file():
        raise TnaError(f"{path}: no such file; give a .nir file written by nir.write")
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise TnaError(f"{path}: not an HDF5 file, so not a NIR graph (nir.write writes "
                       f"HDF5)") from None
    with f:
        _check_node_types(f, path)
    import nir
    try:
        graph = nir.read(path, type_check=type_check)
    except _DAMAGED as e:
        raise TnaError(f"{path}: malformed NIR graph ({_short(e)}); write it again with "
                       f"nir.write") from None
    if not isinstance(graph, nir.NIRGraph):
        raise TnaError(f"{path}: holds a single {type(graph).__name__}, not a NIRGraph")
    return graph


def _check_node_types(f, path) -> None:
    if "node" not in f or "layer" in f:
        what = "a netx file: run it with `tna run`" if "layer" in f else "no 'node' group"
        raise TnaError(f"{path}: not a NIR graph ({what})")
    root = f["node"]
    if "nodes" not in root or "edges" not in root:
        raise TnaError(f"{path}: malformed NIR graph (no nodes or edges); write it again "
                       f"with nir.write")
    for name, node in root["nodes"].items():
        try:
            kind = node["type"][()]
        except (KeyError, TypeError, AttributeError):
            raise TnaError(f"{path}: node '{name}' has no type; write the graph again with "
                           f"nir.write") from None
        kind = kind.decode("utf8", "replace") if isinstance(kind, bytes) else str(kind)
        if kind not in SUPPORTED:
            raise TnaError(f"{path}: node '{name}' is a {kind}, which tna cannot import "
                           f"(it reads {', '.join(SUPPORTED)})")


def _short(e: BaseException) -> str:
    text = str(e).splitlines()[0][:160] if str(e) else ""
    return text or type(e).__name__


def chain(graph, where: str = "graph") -> list:
    """The graph's nodes from its Input to its Output, as (name, node); TnaError otherwise."""
    kinds = {name: type(node).__name__ for name, node in graph.nodes.items()}
    inputs = [n for n, k in kinds.items() if k == "Input"]
    if len(inputs) != 1:
        raise TnaError(f"{where}: tna imports graphs with one Input node, found {len(inputs)}")
    succ: dict = {}
    for a, b in graph.edges:
        if a not in kinds or b not in kinds:
            raise TnaError(f"{where}: edge ({a!r}, {b!r}) names a node the graph lacks")
        succ.setdefault(a, []).append(b)
    order, name = [], inputs[0]
    while True:
        order.append(name)
        if kinds[name] == "Output":
            break
        nxt = succ.get(name, [])
        if len(nxt) != 1:
            raise TnaError(f"{where}: node '{name}' leads to {len(nxt)} nodes "
                           f"({', '.join(nxt) or 'none'}); tna imports chains from Input to "
                           f"Output only")
        name = nxt[0]
        if name in order:
            raise TnaError(f"{where}: node '{name}' closes a cycle; tna imports feed-forward "
                           f"chains only")
    left = sorted(set(kinds) - set(order))
    if left:
        raise TnaError(f"{where}: nodes {left} are not on the chain from Input to Output")
    return [(n, graph.nodes[n]) for n in order]


# --------------------------------------------------------------------------- synapses

@dataclass
class _Synapse:
    kind: str                     # 'dense' | 'conv'
    weight: np.ndarray            # float64; dense (out, in), conv (out, in/groups, kh, kw)
    out_shape: tuple
    conv: dict = field(default_factory=dict)   # netx conv fields
    bias: np.ndarray | None = None   # float64 per output row (dense) or channel (conv)


def _array(node, name, where) -> np.ndarray:
    a = np.asarray(getattr(node, name), dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise TnaError(f"{where}: {name} holds NaN or Inf")
    return a


def _bias(node, n_out: int, where) -> np.ndarray | None:
    """The synapse's bias per output (row or channel), None when absent or all zero."""
    if getattr(node, "bias", None) is None:
        return None
    b = _array(node, "bias", where).reshape(-1)
    if b.size not in (1, n_out):
        raise TnaError(f"{where}: bias has {b.size} values for {n_out} outputs")
    return np.broadcast_to(b, (n_out,)).copy() if np.any(b != 0) else None


def _pair(x, where, name) -> tuple:
    a = np.asarray(x).reshape(-1)
    if a.size not in (1, 2) or a.dtype.kind not in "iuf" or np.any(a != np.round(a)):
        raise TnaError(f"{where}: {name} = {x!r} is not one or two whole numbers")
    t = tuple(int(v) for v in a)
    return t * 2 if len(t) == 1 else t


def _dense(node, shape, where) -> _Synapse:
    w = _array(node, "weight", where)
    if w.ndim != 2:
        raise TnaError(f"{where}: weight must be 2-D (out, in), found shape {w.shape}")
    if len(shape) != 1 or shape[0] != w.shape[1]:
        hint = "; put a Flatten before it" if len(shape) > 1 else ""
        raise TnaError(f"{where}: weight takes {w.shape[1]} inputs but gets shape "
                       f"{tuple(shape)}{hint}")
    return _Synapse("dense", w, (w.shape[0],), bias=_bias(node, w.shape[0], where))


def _padding(node, kernel, dilation, stride, where) -> tuple:
    p = node.padding
    if isinstance(p, bytes):
        p = p.decode()
    if isinstance(p, str):
        if p == "valid":
            return (0, 0)
        span = [d * (k - 1) for d, k in zip(dilation, kernel)]
        if p != "same" or stride != (1, 1) or any(s % 2 for s in span):
            raise TnaError(f"{where}: padding {p!r} is not a symmetric padding netx can hold")
        return tuple(s // 2 for s in span)
    return _pair(p, where, "padding")


def _conv_shape(shape, w_shape, stride, padding, dilation, where) -> tuple:
    h, w = (netx.conv_output_size(shape[1 + i], w_shape[2 + i], stride[i], padding[i], dilation[i])
            for i in range(2))
    if min(h, w) < 1:
        raise TnaError(f"{where}: gives an empty output for input {tuple(shape)}")
    return (w_shape[0], h, w)


def _conv(node, shape, where) -> _Synapse:
    w = _array(node, "weight", where)
    if w.ndim != 4 or len(shape) != 3:
        raise TnaError(f"{where}: needs a 4-D weight and a (C, H, W) input, got weight "
                       f"{w.shape} and input {tuple(shape)}")
    groups = int(np.asarray(node.groups).reshape(-1)[0])
    if groups < 1 or shape[0] != w.shape[1] * groups or w.shape[0] % groups:
        raise TnaError(f"{where}: weight {w.shape} with groups {groups} does not take "
                       f"{shape[0]} input channels")
    stride, dilation = _pair(node.stride, where, "stride"), _pair(node.dilation, where, "dilation")
    padding = _padding(node, w.shape[2:], dilation, stride, where)
    out = _conv_shape(shape, w.shape, stride, padding, dilation, where)
    return _Synapse("conv", w, out, dict(in_channels=int(shape[0]), out_channels=w.shape[0],
                                         kernel_size=tuple(w.shape[2:]), stride=stride,
                                         padding=padding, dilation=dilation, groups=groups),
                    bias=_bias(node, w.shape[0], where))


def _pool(node, shape, where) -> _Synapse:
    """SumPool2d / AvgPool2d as a depthwise conv whose kernel is all 1 (or 1 / area)."""
    if len(shape) != 3:
        raise TnaError(f"{where}: pools need a (C, H, W) input, got {tuple(shape)}")
    kernel = _pair(node.kernel_size, where, "kernel_size")
    stride, padding = _pair(node.stride, where, "stride"), _pair(node.padding, where, "padding")
    c = int(shape[0])
    value = 1.0 / (kernel[0] * kernel[1]) if type(node).__name__ == "AvgPool2d" else 1.0
    w = np.full((c, 1) + kernel, value)
    out = _conv_shape(shape, w.shape, stride, padding, (1, 1), where)
    return _Synapse("conv", w, out, dict(in_channels=c, out_channels=c, kernel_size=kernel,
                                         stride=stride, padding=padding, dilation=(1, 1),
                                         groups=c))


_SYNAPSES = {"Affine": _dense, "Linear": _dense, "Conv2d": _conv, "SumPool2d": _pool,
             "AvgPool2d": _pool}
POOLS = ("SumPool2d", "AvgPool2d")


def parse_synapse(node, shape: tuple, where: str) -> _Synapse:
    """A synapse node (one of SYNAPSES) read for an input of `shape`."""
    return _SYNAPSES[type(node).__name__](node, shape, where)


def fold_pool(conv: _Synapse, pool: _Synapse, where) -> _Synapse:
    """A conv followed by a pool (no neuron between) as one conv with the same meaning.

    Output o of the pool sums conv outputs o*sB + j (j < kB) times the pool weight q, each
    the conv's taps at (o*sB + j)*sA - pA + m*dA: one conv of stride sA*sB, padding pA and a
    kernel of size (kB - 1)*sA + (kA - 1)*dA + 1 holding q*W at offsets j*sA + m*dA. Exact
    when the pool does not pad (its padding would add zeros the conv never computed); the
    output size is the pool's (floor division nests). A bias b becomes q*kB^2*b.
    """
    c, p = conv.conv, pool.conv
    if p["padding"] != (0, 0):
        raise TnaError(f"{where}: a pool with padding after a conv cannot be folded into "
                       f"one netx conv exactly; use padding 0")
    w = conv.weight
    q = float(pool.weight.reshape(-1)[0])
    kb, sa, da = p["kernel_size"], c["stride"], c["dilation"]
    size = tuple((kb[a] - 1) * sa[a] + (w.shape[2 + a] - 1) * da[a] + 1 for a in (0, 1))
    folded = np.zeros(w.shape[:2] + size)
    for j0 in range(kb[0]):
        for j1 in range(kb[1]):
            for m0 in range(w.shape[2]):
                for m1 in range(w.shape[3]):
                    folded[:, :, j0 * sa[0] + m0 * da[0], j1 * sa[1] + m1 * da[1]] += \
                        q * w[:, :, m0, m1]
    fields = dict(c, kernel_size=size, dilation=(1, 1),
                  stride=(sa[0] * p["stride"][0], sa[1] * p["stride"][1]))
    bias = None if conv.bias is None else conv.bias * q * kb[0] * kb[1]
    return _Synapse("conv", folded, pool.out_shape, fields, bias=bias)


def regroup(syn: _Synapse, groups: int, where) -> _Synapse:
    """A conv that `tna export` wrote with groups 1 for snnTorch and Norse (zeros between the
    groups, tna.nir.write.ungroup) as the grouped conv it came from."""
    w, out, cin = syn.weight, syn.weight.shape[0], syn.weight.shape[1]
    if groups < 1 or out % groups or cin % groups:
        raise TnaError(f"{where}: conv_groups {groups} does not divide its channels")
    per, gin = out // groups, cin // groups
    blocks = [w[g * per:(g + 1) * per, g * gin:(g + 1) * gin] for g in range(groups)]
    outside = np.abs(w).sum() - sum(np.abs(b).sum() for b in blocks)
    if outside != 0:
        raise TnaError(f"{where}: weights outside the conv_groups {groups} blocks; the "
                       f"graph's metadata does not match its conv")
    return _Synapse("conv", np.concatenate(blocks), syn.out_shape,
                    dict(syn.conv, groups=groups), bias=syn.bias)


# --------------------------------------------------------------------------- quantisation

def _per_output(a: np.ndarray, kind: str, name: str, where: str) -> np.ndarray:
    """A per-neuron array as one value per output row (dense) or channel (conv)."""
    if kind == "dense":
        return a
    first = a[:, :1, :1]
    if not np.allclose(a, first, rtol=EXACT_RTOL, atol=0):
        raise TnaError(f"{where}: {name} differs within a conv channel; netx conv layers "
                       f"share it over each channel")
    return first.reshape(-1)


def _one_decay(a: np.ndarray, name: str, where: str) -> tuple[int, float]:
    """One integer decay (1/4096 per step) for the layer, and its error as a fraction."""
    if np.any(a < 0) or np.any(a > 1 + EXACT_RTOL):
        raise TnaError(f"{where}: dt / {name} = {a.max():.4g} is outside [0, 1]: the time "
                       f"constant is shorter than the step dt; pass the dt the graph was "
                       f"made for (--dt)")
    ints = np.unique(np.round(a * netx.P_SCALE).astype(np.int64))
    if len(ints) != 1:
        raise TnaError(f"{where}: per-neuron {name} values differ ({len(ints)} distinct "
                       f"decays); netx holds one per layer")
    return int(ints[0]), float(np.abs(ints[0] / netx.P_SCALE - a).max())


def _on_grid(x: np.ndarray) -> bool:
    return bool(np.all(np.abs(x - np.round(x)) <= EXACT_RTOL * np.maximum(1.0, np.abs(x))))


BIAS_MAX = 2**15 - 1       # Lava holds bias_mant as int16


def _quantise(w_eff: np.ndarray, theta: np.ndarray | None, bias: np.ndarray | None,
              where: str):
    """(w_int, bias_int or None, vth_mant, exact, weight error, clipped, voltage scale per
    output). `bias`: voltage added per step, per output, in the units of w_eff."""
    rows = w_eff.reshape(len(w_eff), -1)
    w64 = rows * netx.W_SCALE
    t64 = None if theta is None else theta * netx.W_SCALE
    b64 = None if bias is None else bias * netx.W_SCALE
    exact = (_on_grid(w64) and np.all(np.round(w64) >= netx.WEIGHT_MIN)
             and np.all(np.round(w64) <= netx.WEIGHT_MAX)
             and (b64 is None or (_on_grid(b64) and np.all(np.abs(b64) <= BIAS_MAX)))
             and (t64 is None or (np.all(t64 == t64[0]) and _on_grid(t64)
                                  and 0 <= round(t64[0]) <= netx.VTH_MANT_MAX)))
    if exact:
        vth = netx.NON_SPIKING_VTH_MANT if t64 is None else int(round(t64[0]))
        return (np.round(w64).reshape(w_eff.shape), None if b64 is None else np.round(b64),
                vth, True, 0.0, 0, np.full(len(rows), float(netx.STATE_SCALE)))
    if theta is not None and np.any(theta <= 0):
        raise TnaError(f"{where}: v_threshold must be > 0 to be quantised, found "
                       f"{theta.min():g}")
    scale = np.ones(len(rows)) if theta is None else theta
    norm = rows / scale[:, None]
    m = float(np.abs(norm).max())
    if m == 0:
        raise TnaError(f"{where}: every weight is 0; netx cannot load such a layer")
    if theta is None:       # no threshold: scale the largest weight to the top of the grid
        k, vth = EVEN_WEIGHT_MAX / m, netx.NON_SPIKING_VTH_MANT
    else:
        k = float(min(max(math.floor(EVEN_WEIGHT_MAX / m), 1), netx.VTH_MANT_MAX))
        vth = int(k)
    target = k * norm
    w_int = np.clip(2 * np.round(target / 2), netx.WEIGHT_MIN, netx.WEIGHT_MAX)
    clipped = int(np.sum(np.abs(target) > EVEN_WEIGHT_MAX + 1))
    error = float(np.abs(w_int - target).max() / k / (m if theta is None else 1.0))
    b_int = None
    if bias is not None:      # the same scale as the weights; integers, not the even grid
        b_target = k * bias / scale
        b_int = np.clip(np.round(b_target), -BIAS_MAX - 1, BIAS_MAX)
        clipped += int(np.sum(np.abs(b_target) > BIAS_MAX + 1))
        error = max(error, float(np.abs(b_int - b_target).max() / k /
                                 (m if theta is None else 1.0)))
    v_scale = netx.W_SCALE * k / scale
    return w_int.reshape(w_eff.shape), b_int, vth, False, error, clipped, v_scale


def _voltage_bias(syn: _Synapse, d: Discrete, gain: np.ndarray, where) -> np.ndarray | None:
    """The voltage a layer adds every step, per output: v_leak's a_mem * v_leak, plus the
    synapse bias times its gain when the current lasts one step (else the bias builds up in
    the current, which Loihi's voltage bias cannot follow)."""
    v_bias = _per_output(d.bias, syn.kind, "v_leak", where) if np.any(d.bias != 0) else None
    if syn.bias is None:
        return v_bias
    if not np.allclose(d.a_syn, 1.0, rtol=EXACT_RTOL, atol=0):
        raise TnaError(f"{where}: a synapse bias into a neuron whose current outlasts one step "
                       f"(tau_syn > dt) builds up in the current, but Loihi adds bias to the "
                       f"voltage; use a LIF neuron (or tau_syn = dt) with biases, or v_leak")
    b = syn.bias * gain
    return b if v_bias is None else b + v_bias


def _layer(index, names, syn: _Synapse, d: Discrete, where) -> tuple:
    """One netx layer from a synapse and its neuron's discrete parameters; and its LayerQuant."""
    if d.spiking and np.any(d.v_reset != 0):
        raise TnaError(f"{where}: v_reset must be 0 (Loihi resets v to 0)")
    i_decay, i_err = _one_decay(d.a_syn, "tau_syn", where)
    v_decay, v_err = _one_decay(d.a_mem, "tau_mem", where)
    gain = _per_output(d.g_syn * d.g_mem, syn.kind, "w_in * r", where)
    theta = None if not d.spiking else _per_output(d.threshold, syn.kind, "v_threshold", where)
    w_eff = syn.weight * gain.reshape((-1,) + (1,) * (syn.weight.ndim - 1))
    bias = _voltage_bias(syn, d, gain, where)
    w_int, b_int, vth, exact, err, clipped, v_scale = _quantise(w_eff, theta, bias, where)
    neuron = Cuba(i_decay=i_decay, v_decay=v_decay, vth_mant=vth)   # the only target on Loihi
    weight = w_int.astype(np.float32)
    b_int = None if b_int is None else b_int.astype(np.float32)
    if syn.kind == "dense":
        layer = netx.Layer("dense", syn.out_shape, weight=weight, neuron=neuron, bias=b_int,
                           in_features=weight.shape[1], out_features=weight.shape[0])
    else:
        layer = netx.Layer("conv", syn.out_shape, weight=weight, neuron=neuron, bias=b_int,
                           **syn.conv)
    exact = exact and i_err <= EXACT_RTOL and v_err <= EXACT_RTOL
    quant = LayerQuant(index, names, exact, d.spiking, vth, err, clipped, i_err, v_err)
    if syn.kind == "conv":     # per channel -> per neuron (C, H, W)
        v_scale = np.repeat(v_scale, int(np.prod(syn.out_shape[1:])))
    return layer, quant, v_scale


# --------------------------------------------------------------------------- the graph

def _graph_meta(graph) -> dict:
    meta = getattr(graph, "metadata", None)
    if not isinstance(meta, dict):
        return {}
    return {str(k): (v.decode() if isinstance(v, bytes) else v) for k, v in meta.items()}


def resolve_dt(graph, dt: float | None, where: str) -> float:
    if dt is not None:
        return float(dt)
    value = _graph_meta(graph).get("dt")
    try:
        value = float(np.asarray(value).reshape(-1)[0]) if value is not None else None
    except (TypeError, ValueError):
        value = None
    if value is None or not (math.isfinite(value) and value > 0):
        raise TnaError(f"{where}: the graph's metadata gives no time step 'dt'; pass --dt "
                       f"SECONDS, the step it was made for: 1e-4 for snnTorch's exports, "
                       f"1e-6 for Norse 1.1's at its default dt of 1 ms (its to_nir writes "
                       f"tau = dt / tau_inv, so dt * dt reproduces its decays)")
    return value


def input_shape(node, where) -> tuple:
    """The Input node's shape without a batch axis: (F,) or (C, H, W). A leading axis of 1
    on (1, F) or (1, C, H, W) is a batch of one (Norse writes its sample data's shape)."""
    shape = node.input_type.get("input") if isinstance(node.input_type, dict) else None
    a = np.asarray(shape if shape is not None else [], dtype=np.float64).reshape(-1)
    if a.size in (2, 4) and a[0] == 1:
        a = a[1:]
    if a.size not in (1, 3) or np.any(a < 1) or np.any(a != np.round(a)):
        raise TnaError(f"{where}: Input shape {shape!r}: tna reads (F,) or (C, H, W) inputs, "
                       f"with or without a leading batch axis of 1")
    return tuple(int(v) for v in a)


def to_netx(graph, cfg: ImportConfig = ImportConfig(), where: str = "graph"):
    """(NetxModel, Conversion) for a NIR graph, per the rule in this module's docstring."""
    dt = resolve_dt(graph, cfg.dt, where)
    nodes = chain(graph, where)
    shape = input_shape(nodes[0][1], f"{where}: node '{nodes[0][0]}'")
    layers = [netx.Layer("input", shape)]
    conv = Conversion(dt=dt, readout="spike")
    groups = _conv_groups(graph, where)
    k = 1
    while type(nodes[k][1]).__name__ != "Output":
        name, node = nodes[k]
        kind, here = type(node).__name__, f"{where}: node '{nodes[k][0]}' ({type(node).__name__})"
        if conv.readout == "voltage":
            raise TnaError(f"{where}: node '{conv.layers[-1].nodes[-1]}' does not spike (its "
                           f"output is a voltage), so it can only be the last layer")
        if kind == "Flatten":
            shape = _flatten(layers, shape)
            k += 1
            continue
        if kind not in _SYNAPSES:
            raise TnaError(f"{here}: follows '{nodes[k - 1][0]}' directly; tna needs a synapse "
                           f"({', '.join(SYNAPSES)}) before every neuron")
        syn, names = parse_synapse(node, shape, here), [name]
        if name in groups:
            syn = regroup(syn, groups[name], here)
        while type(nodes[k + 1][1]).__name__ in POOLS and syn.kind == "conv":
            k += 1                        # Conv2d -> pool -> neuron: one conv (fold_pool)
            pname, pool = nodes[k]
            phere = f"{where}: node '{pname}' ({type(pool).__name__})"
            syn = fold_pool(syn, _pool(pool, syn.out_shape, phere), phere)
            names.append(pname)
        nname, neuron = nodes[k + 1]
        if type(neuron).__name__ not in NEURONS:
            raise TnaError(f"{here}: is followed by '{nname}' ({type(neuron).__name__}); tna "
                           f"needs a neuron ({', '.join(NEURONS)}) after every synapse")
        nhere = f"{where}: node '{nname}' ({type(neuron).__name__})"
        layer, quant, v_scale = _layer(len(layers), names + [nname], syn,
                                       discrete(neuron, dt, syn.out_shape, nhere), nhere)
        layers.append(layer)
        conv.layers.append(quant)
        conv.out_scale = v_scale
        conv.readout = "spike" if type(neuron).__name__ in ("CubaLIF", "LIF", "IF") else "voltage"
        shape = syn.out_shape
        k += 2
    if not conv.layers:
        raise TnaError(f"{where}: the graph has no neuron layer between its Input and Output")
    meta = _metadata(graph, cfg, conv, shape, layers)
    if meta.readout == "voltage" and layers[-1].neuron.vth_mant == netx.NON_SPIKING_VTH_MANT:
        conv.readout = "voltage"         # tna's portable form: a CubaLIF that never spikes
    model = netx.NetxModel(layers=layers, meta=meta)
    problems = netx.validate(model) + netx.loihi_warnings(model)
    if problems:
        raise TnaError(f"{where}: the imported net {problems[0]}")
    return model, conv


def _conv_groups(graph, where) -> dict:
    """Node name -> netx groups of the grouped convs tna wrote with groups 1."""
    text = _graph_meta(graph).get("conv_groups")
    if text is None:
        return {}
    try:
        groups = json.loads(text)
        return {str(k): int(v) for k, v in groups.items()}
    except (TypeError, ValueError, AttributeError):
        raise TnaError(f"{where}: the graph's conv_groups metadata is not a JSON object of "
                       f"node names and group counts; export it again") from None


def _flatten(layers: list, shape: tuple) -> tuple:
    """A Flatten: of the input itself right after Input, a netx flatten layer after a conv."""
    n = int(np.prod(shape))
    if len(shape) == 1:
        return shape
    if len(layers) == 1:
        layers[0] = netx.Layer("input", (n,))
    else:
        layers.append(netx.Layer("flatten", (n, 1, 1)))
    return (n,)


def _metadata(graph, cfg: ImportConfig, conv: Conversion, out_shape, layers) -> netx.Metadata:
    gmeta = _graph_meta(graph)
    if "tna_metadata" in gmeta:         # a graph tna wrote: its metadata, unchanged
        try:
            d = json.loads(gmeta["tna_metadata"])
        except (TypeError, ValueError):
            raise TnaError("the graph's tna_metadata is not JSON; export it again") from None
        meta = netx.Metadata.from_dict(d, where="the graph's tna_metadata")
        if not conv.exact:
            meta.extra = {**meta.extra, "nir_import": conv.to_dict()}
        return meta
    timesteps = cfg.timesteps or _int(gmeta.get("timesteps"))
    if timesteps is None:
        raise TnaError("the graph's metadata gives no T (steps per sample); pass --timesteps")
    in_shape = list(layers[0].shape)
    return netx.Metadata(
        dataset=str(gmeta.get("dataset", "")), timesteps=timesteps,
        encoding="direct" if cfg.input_message_bits else "rate", input_shape=in_shape,
        input_bits=cfg.input_message_bits or 1,      # graded values fill the message bits
        input_message_bits=cfg.input_message_bits, readout=conv.readout,
        extra={"source": "nir", "nir_import": conv.to_dict()})


def _int(value) -> int | None:
    try:
        v = int(np.asarray(value).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        return None
    return v if v >= 1 else None


SUBTRACT_RESET_NOTE = (
    "note: NIR resets a neuron that spikes to v_reset; snnTorch's default reset "
    "(reset_mechanism='subtract', one step late) has no NIR form and its exporter writes "
    "v_reset = 0 for it, so a net trained with it spikes differently here: train it with "
    "reset_mechanism='zero'")


SNNTORCH_DT = 1e-4       # snnTorch's exporter fixes dt and writes r = tau_mem / dt


def _snntorch_form(node) -> bool:
    """A LIF / CubaLIF as snnTorch's exporter writes it: r = tau_mem / 1e-4 (Norse: r = 1)."""
    tau = getattr(node, "tau_mem", getattr(node, "tau", None))
    r = getattr(node, "r", None)
    if tau is None or r is None:
        return False
    tau, r = np.asarray(tau, np.float64), np.asarray(r, np.float64)
    return bool(tau.size and np.allclose(r * SNNTORCH_DT, tau, rtol=1e-6, atol=0))


def caveats(graph) -> list[str]:
    """One-line notes on what a foreign graph cannot say about the net it came from: the
    subtract-reset note for graphs whose neurons are in snnTorch's form."""
    if "tna_metadata" in _graph_meta(graph):
        return []
    spiking = [n for n in graph.nodes.values() if type(n).__name__ in ("LIF", "CubaLIF")]
    return [SUBTRACT_RESET_NOTE] if spiking and all(map(_snntorch_form, spiking)) else []


def import_nir(path, cfg: ImportConfig = ImportConfig()):
    """Read a NIR graph file and write it as a netx file at `cfg.out`: (path, Conversion)."""
    from tna.console import log
    from tna.export.writer import refuse_existing
    refuse_existing(cfg.out, cfg.force)
    graph = read_graph(path)
    model, conv = to_netx(graph, cfg, where=str(path))
    for note in caveats(graph):
        log(note)
    return netx.write_net(model, cfg.out), conv
