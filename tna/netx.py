"""Everything tna knows about the Lava netx HDF5 layout, in one module.

A netx file (as lava-dl's `export_hdf5` writes it and `lava.lib.dl.netx.hdf5.Network` reads it):

    layer/0 .. layer/{n-1}           one group per layer, in order
      type          b'dense' | b'conv' | b'flatten' | b'input' ...   (S10, shape (1,))
      shape         dense [out]; conv [C, H, W]; flatten [C*H*W, 1, 1]
      inFeatures, outFeatures                    (dense)
      inChannels, outChannels, kernelSize[2], stride[2], padding[2], dilation[2], groups   (conv)
      weight        float32 holding integers: dense (out, in); conv (out, in/groups, kh, kw)
      bias, delay   optional, per neuron
      neuron/type   b'CUBA'
      neuron/iDecay, vDecay     decays in units of 1/4096 per step, 0..4096
      neuron/vThMant            threshold mantissa; Lava spikes when v > vThMant << 6
      neuron/refDelay, gradedSpike   written by lava-dl, ignored by netx
    tna/                          tna's metadata; netx ignores other top-level groups
      attrs: format_version, tna_version, meta (JSON)

Slayer float values relate to these integers as: weight = w_int / 64, threshold = vThMant / 64,
current_decay = iDecay / 4096, voltage_decay = vDecay / 4096.

This module reads and writes that layout to and from plain dataclasses (`NetxModel`), and checks a
model against what netx and Loihi 2 accept (`validate`). It imports h5py and numpy only.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tna.atomic import atomic_path
from tna.errors import TnaError
from tna.neurons import (NON_SPIKING_VTH_MANT, P_SCALE, STATE_SCALE, VTH_MANT_MAX,  # noqa: F401
                         W_SCALE, Cuba, Neuron)
from tna.neurons import from_fields as _neuron_from_fields

FORMAT_VERSION = 1            # version of the `tna` metadata group; bump on incompatible change
WEIGHT_MIN, WEIGHT_MAX = -256, 254    # quantize_8bit range of integer weights (even values)
MAX_DELAY = 62                # netx clips axonal delays to 0..62 (DelayDense max_delay=62)


# netx's create_dense gives a dense layer without a `neuron` group a non-leaky integrator. netx
# writes its threshold `1 << 18 - 1`, which Python reads as 1 << (18 - 1) = 2**17: v (24-bit,
# clipped at 2**23 - 1) never exceeds vThMant << 6 = 2**23, so it never spikes.
NETX_DEFAULT_NEURON = Cuba(i_decay=0, v_decay=4096, vth_mant=1 << 17)


def message_bits_of(neuron: Neuron) -> int:
    """Bits of the messages a neuron sends (netx's get_neuron_params): `messageBits` when the
    file gives it, else its type's default (16 for SDNN, 0 = binary spikes for the others)."""
    return neuron.out_bits


@dataclass
class Layer:
    """One netx layer. Fields not used by a layer type stay None."""
    type: str
    shape: tuple
    weight: np.ndarray | None = None     # integer-valued; dense (out, in), conv (out, in/g, kh, kw)
    neuron: Neuron | None = None
    bias: np.ndarray | None = None
    delay: np.ndarray | None = None      # axonal delay per neuron, in time steps
    weight_rec: np.ndarray | None = None   # dense_rec: recurrent weights (out, out)
    in_features: int | None = None       # dense
    out_features: int | None = None      # dense
    in_channels: int | None = None       # conv
    out_channels: int | None = None      # conv
    kernel_size: tuple | None = None     # conv (kh, kw)
    stride: tuple | None = None
    padding: tuple | None = None
    dilation: tuple | None = None
    groups: int | None = None

    @property
    def num_neurons(self) -> int:
        return int(np.prod(self.shape)) if neuron_of(self) is not None else 0

    @property
    def num_synapses(self) -> int:
        """Synapses as Loihi stores them (dense: out*in; conv: per output neuron, kernel taps)."""
        if self.weight is None:
            return 0
        if self.type == "conv":
            c, h, w = self.shape
            return int(c * h * w * np.prod(self.weight.shape[1:]))
        return int(self.weight.size)


def neuron_of(layer: Layer) -> Neuron | None:
    """The neuron netx gives `layer`: its own group, netx's default integrator for a dense
    layer without one, None for layers without neurons (flatten, shape-only input)."""
    if layer.neuron is not None:
        return layer.neuron
    return NETX_DEFAULT_NEURON if layer.type in ("dense", "dense_rec") else None


def dense_matrix(layer: Layer) -> np.ndarray:
    """A dense layer's weight as netx uses it: (out, in), out = prod(shape); netx reshapes a
    1-D weight to (out, -1). Raises ValueError when the weight does not fit that."""
    w = np.asarray(layer.weight)
    out = int(np.prod(layer.shape))
    if w.ndim == 1:
        if out < 1 or w.size % out:
            raise ValueError(f"a 1-D weight of {w.size} values does not split into {out} rows")
        return w.reshape(out, -1)
    if w.ndim != 2:
        raise ValueError(f"weight must be 1-D or 2-D (out, in), not {w.ndim}-D")
    return w


@dataclass
class Metadata:
    """tna's description of an exported net; lava-dl ignores it."""
    dataset: str = ""
    class_names: list = field(default_factory=list)
    timesteps: int = 5                   # T, steps per sample
    encoding: str = "direct"             # 'direct' (graded input) or 'rate' (binary spikes)
    input_shape: list = field(default_factory=list)   # slayer layout (C, H, W) or (F,)
    input_bits: int = 4                  # direct input integers are 0 .. 2**input_bits - 1
    input_message_bits: int = 0          # netx.hdf5.Network(input_message_bits=...); 0 = binary
    readout: str = "voltage"             # 'voltage' (sum of output v) or 'spike' (spike count)
    reference_accuracy: float | None = None   # of the exported net, evaluated with slayer
    reference_split: str = ""
    checkpoint_sha256: str = ""
    weights: str = "fp"                  # 'fp' (8-bit), 'ternary', 'binary'
    ternary_layers: list = field(default_factory=list)  # layer indices holding {-m, 0, m}
    format_version: int = FORMAT_VERSION
    tna_version: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, where: str = "metadata") -> "Metadata":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise TnaError(f"{where}: unknown metadata keys {unknown}; export again with this tna")
        from tna.config import from_dict
        meta = from_dict(cls, d, where=where)            # names values of the wrong type
        for key, kind in (("input_shape", int), ("ternary_layers", int), ("class_names", str)):
            values = getattr(meta, key)
            if not all(isinstance(v, kind) and not isinstance(v, bool) for v in values):
                raise TnaError(f"{where}: {key} = {values!r} should hold only {kind.__name__} "
                               f"values; export the net again")
        if any(v < 1 for v in meta.input_shape):
            raise TnaError(f"{where}: input_shape = {meta.input_shape} has sizes below 1; "
                           f"export the net again")
        return meta


@dataclass
class NetxModel:
    layers: list
    meta: Metadata | None = None

    @property
    def neuron_layers(self) -> list:
        return [layer for layer in self.layers if neuron_of(layer) is not None]


# --------------------------------------------------------------------------- reading

def _scalar(x) -> Any:
    a = np.asarray(x)
    return a.reshape(-1)[0].item() if a.size else None


def _tuple(x) -> tuple:
    return tuple(int(v) for v in np.asarray(x).reshape(-1))


def _decode(x) -> str:
    v = np.asarray(x).reshape(-1)[0]
    return v.decode("ascii", "replace") if isinstance(v, bytes) else str(v)


def _read_neuron(g, where) -> Neuron:
    """The neuron model (tna.neurons) of a `neuron` group, from its scalar datasets."""
    if "type" not in g:
        raise TnaError(f"{where}/neuron: missing field 'type'; re-export the net")
    fields = {k: _scalar(g[k][()]) for k in g
              if k != "type" and hasattr(g[k], "shape") and g[k].size}
    return _neuron_from_fields({"type": _decode(g["type"][()]), **fields}, where)


def _read_common(g, where, layer_type) -> Layer:
    layer = Layer(type=layer_type, shape=_tuple(g["shape"][()]))
    if "weight" in g:
        if not isinstance(g["weight"], type(g["shape"])):     # a group: complex weights
            raise TnaError(f"{where}/weight: complex (real/imag) weights are not supported")
        layer.weight = _numeric(g["weight"][()], f"{where}/weight")
    if "neuron" in g:
        layer.neuron = _read_neuron(g["neuron"], where)
    for name in ("bias", "delay", "weight_rec"):
        if name in g:
            setattr(layer, name, _numeric(g[name][()], f"{where}/{name}"))
    return layer


def _numeric(x, where) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise TnaError(f"{where}: holds {a.dtype} values, not numbers; re-export the net")
    return a


def _read_dense(g, where) -> Layer:
    layer = _read_common(g, where, "dense")
    _require(g, where, "weight")          # no neuron: netx's default integrator (neuron_of)
    out = int(np.prod(layer.shape))
    n_in = layer.weight.size // out if out > 0 else 0
    layer.in_features = int(_scalar(g["inFeatures"][()])) if "inFeatures" in g else n_in
    layer.out_features = int(_scalar(g["outFeatures"][()])) if "outFeatures" in g else out
    return layer


def _read_conv(g, where) -> Layer:
    layer = _read_common(g, where, "conv")
    # what netx's create_conv reads; the kernel size comes from the weight (kernelSize is
    # written by lava-dl but not read)
    _require(g, where, "weight", "stride", "padding", "dilation", "groups")
    w = layer.weight
    if w.ndim > 4 and all(d == 1 for d in w.shape[4:]):
        layer.weight = w.reshape(w.shape[:4])      # slayer's (out, in, kh, kw, 1): netx's
                                                   # create_conv keeps the first four axes
    layer.in_channels = int(_scalar(g["inChannels"][()])) if "inChannels" in g else None
    layer.out_channels = int(_scalar(g["outChannels"][()])) if "outChannels" in g else None
    layer.kernel_size = (_pair(g["kernelSize"][()]) if "kernelSize" in g
                         else tuple(int(k) for k in layer.weight.shape[2:4]))
    layer.stride = _pair(g["stride"][()])
    layer.padding = _pair(g["padding"][()])
    layer.dilation = _pair(g["dilation"][()])
    layer.groups = int(_scalar(g["groups"][()]))
    return layer


def _pair(x) -> tuple:
    t = _tuple(x)
    if not t:
        raise ValueError("an empty array where a pair of sizes belongs")
    return t * 2 if len(t) == 1 else t[:2]


def _read_plain(layer_type) -> Callable:
    def read(g, where) -> Layer:
        return _read_common(g, where, layer_type)
    return read


def _require(g, where, *names) -> None:
    for name in names:
        if name not in g:
            raise TnaError(f"{where}: missing field {name!r}; the file is incomplete, re-export it")


# What h5py and numpy raise on damaged files or fields of the wrong kind (e.g. int(inf)).
_DAMAGED = (KeyError, ValueError, TypeError, IndexError, OSError, RuntimeError, OverflowError,
            AttributeError)


def read_net(path) -> NetxModel:
    """Read a netx HDF5 file into a `NetxModel`; raise TnaError naming the file and the problem."""
    import h5py

    from tna.files import not_a_net
    path = Path(path)
    why = not_a_net(path)
    if why is not None:
        raise TnaError(why)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise TnaError(f"{path}: a damaged HDF5 file ({_short(e)}); export it again") from None
    try:
        with f:
            return _read_open(f, str(path))
    except TnaError:
        raise
    except _DAMAGED as e:
        raise TnaError(f"{path}: malformed netx file ({_short(e)}); export it again") from None


def _read_open(f, where) -> NetxModel:
    if "layer" not in f:
        raise TnaError(f"{where}: no 'layer' group, so not a netx file; export it with `tna export`")
    group = f["layer"]
    keys = sorted(group.keys(), key=lambda k: int(k) if k.isdigit() else -1)
    if not keys or any(not k.isdigit() for k in keys) or [int(k) for k in keys] != list(range(len(keys))):
        raise TnaError(f"{where}: layers must be named layer/0..layer/n-1, found {keys[:8]}")
    layers = []
    for k in keys:
        g, lw = group[k], f"{where}: layer/{k}"
        if "type" not in g or "shape" not in g:
            missing = "type" if "type" not in g else "shape"
            raise TnaError(f"{lw}: missing field {missing!r}; the file is incomplete, re-export it")
        try:
            layer_type = _decode(g["type"][()])
            kind = LAYERS.get(layer_type)     # other types are read so validate() names them
            reader = kind.read if kind is not None else _read_plain(layer_type)
            layers.append(reader(g, lw))
        except _DAMAGED as e:
            raise TnaError(f"{lw}: malformed field ({_short(e)}); re-export the net") from None
    meta = None
    if "tna" in f:
        meta = _read_meta(f["tna"], where)
    return NetxModel(layers=layers, meta=meta)


def _read_meta(g, where) -> Metadata:
    version = int(g.attrs.get("format_version", -1))
    if version != FORMAT_VERSION:
        raise TnaError(f"{where}: tna metadata format_version {version}, this tna reads "
                       f"{FORMAT_VERSION}; export the net again with this tna version")
    try:
        d = json.loads(g.attrs["meta"])
    except (KeyError, ValueError, TypeError):
        raise TnaError(f"{where}: tna/meta is missing or not JSON; export the net again") from None
    if not isinstance(d, dict):
        raise TnaError(f"{where}: tna/meta is not a JSON object; export the net again")
    return Metadata.from_dict(d, where=f"{where}: tna/meta")


def _short(e: BaseException) -> str:
    return str(e).splitlines()[0][:160] if str(e) else type(e).__name__


# --------------------------------------------------------------------------- writing

def _write_neuron(g, n: Neuron) -> None:
    for key, val in n.to_fields().items():
        if key == "type":
            g.create_dataset("neuron/type", (1,), "S10", [val.encode("ascii")])
        else:
            g.create_dataset(f"neuron/{key}", data=val)


def _write_dense(g, layer: Layer) -> None:
    if layer.in_features is not None:           # lava-dl writes them; netx does not read them
        g.create_dataset("inFeatures", data=int(layer.in_features))
        g.create_dataset("outFeatures", data=int(layer.out_features))


def _write_conv(g, layer: Layer) -> None:
    g.create_dataset("inChannels", data=int(layer.in_channels))
    g.create_dataset("outChannels", data=int(layer.out_channels))
    for key, val in (("kernelSize", layer.kernel_size), ("stride", layer.stride),
                     ("padding", layer.padding), ("dilation", layer.dilation)):
        g.create_dataset(key, data=np.array(val, dtype=np.int64))
    g.create_dataset("groups", data=int(layer.groups))


def _write_nothing(g, layer: Layer) -> None:
    return None


def _write_layer(g, layer: Layer) -> None:
    g.create_dataset("type", (1,), "S10", [layer.type.encode("ascii")])
    g.create_dataset("shape", data=np.array(layer.shape, dtype=np.int64))
    kind = LAYERS.get(layer.type)
    (kind.write if kind is not None else _write_nothing)(g, layer)
    if layer.weight is not None:
        g.create_dataset("weight", data=np.asarray(layer.weight, dtype=np.float32))
    if layer.bias is not None:
        g.create_dataset("bias", data=np.asarray(layer.bias, dtype=np.float32))
    if layer.delay is not None:
        g.create_dataset("delay", data=np.asarray(layer.delay, dtype=np.float32))
    if layer.weight_rec is not None:
        g.create_dataset("weight_rec", data=np.asarray(layer.weight_rec, dtype=np.float32))
    if layer.neuron is not None:
        _write_neuron(g, layer.neuron)


def write_net(model: NetxModel, path) -> Path:
    """Write `model` to `path` atomically (temporary name, then rename)."""
    import h5py

    from tna import __version__

    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            for i, layer in enumerate(model.layers):
                _write_layer(f.create_group(f"layer/{i}"), layer)
            if model.meta is not None:
                meta = dataclasses.replace(model.meta, format_version=FORMAT_VERSION,
                                           tna_version=model.meta.tna_version or __version__)
                g = f.create_group("tna")
                g.attrs["format_version"] = FORMAT_VERSION
                g.attrs["tna_version"] = meta.tna_version
                g.attrs["meta"] = json.dumps(meta.to_dict())
    return path


# --------------------------------------------------------------------------- weight bits

# Which loader builds the Lava network: 'tna' = tna.lava.net.Network, netx's loader whose
# conv layers also go through optimize_weight_bits (ternary convs at 2 bits); 'netx' = unmodified
# lava.lib.dl.netx.hdf5.Network (conv synapses at Lava's default 8 bits, exponent 0).
LOADERS = ("tna", "netx")
LAVA_WEIGHT_BITS = 8           # Lava's default num_weight_bits, and the clip width of its models


def optimize_weight_bits(weight) -> tuple[np.ndarray, int, int]:
    """netx's `optimize_weight_bits` (lava.lib.dl.netx.utils) in numpy: (weights, bits, exponent).

    The weights come back shifted left by the scale netx picks, the exponent undoes that shift
    (synaptic sum * 2**exponent), `bits` is num_weight_bits. netx prints its clip warnings; this
    clips silently. Raises ValueError on all-zero weights, where netx's own fails.
    """
    w = np.asarray(weight).astype(int)
    max_w, min_w = np.max(w), np.min(w)
    if max_w > 254 and min_w < 0:
        w = np.clip(w, -256, 254)
        max_w = np.max(w)
    if min_w < -256 and max_w > 0:
        w = np.clip(w, -256, 254)
        min_w = np.min(w)
    with np.errstate(divide="ignore"):
        if max_w < 0:
            is_signed, scale = 0, -256 / min_w
        elif min_w >= 0:
            is_signed, scale = 0, 255 / max_w
        else:
            is_signed, scale = 1, np.min([127 / max_w, -128 / min_w])
    scale_bits = np.floor(np.log2(scale)) + is_signed
    if not np.isfinite(scale_bits):
        raise ValueError("all weights are zero; netx's optimize_weight_bits cannot handle that")
    n = 8                      # largest n with every weight a multiple of 2**n
    while n > 0 and np.sum(np.abs(w / 2**n - np.round(w / 2**n))) != 0:
        n -= 1
    n -= is_signed
    shifted = np.left_shift(w.astype(np.int32), int(scale_bits)).astype(int)
    return shifted, int(8 - scale_bits - n), int(-scale_bits)


def synapse_weights(weight) -> tuple[np.ndarray, int]:
    """Weights as Lava's bit-accurate synapse computes with them, and the weight exponent.

    `optimize_weight_bits`, then what PyDenseModelBitAcc does at its first step (and tna's conv
    model, tna.lava.procs): `clip_weights(…, num_bits=8)` and `truncate_weights(…, bits)`
    with the sign mode of `determine_sign_mode` (netx's own sign mode never reaches the model).
    The synapse output is then shift_e(W . s), e the exponent.
    """
    w, bits, exp = optimize_weight_bits(weight)
    w = w.astype(np.int32)
    if np.min(w) >= 0:
        mixed, inhibitory = 0, 0
    elif np.max(w) <= 0:
        mixed, inhibitory = 0, 1
    else:
        mixed, inhibitory = 1, 0
    w = -w if inhibitory else w
    w = np.clip(w, -(2**LAVA_WEIGHT_BITS) * mixed, 2**LAVA_WEIGHT_BITS - 1)
    drop = LAVA_WEIGHT_BITS - bits + mixed          # low bits the synapse does not store
    w = (w >> drop) << drop
    w = -w if inhibitory else w
    return w.astype(np.int64), exp


def _bits_optimized(layer: Layer) -> tuple:
    if not np.any(np.asarray(layer.weight).astype(int)):
        return (0, 0)                                # netx cannot load it; nothing is stored
    _, bits, exp = optimize_weight_bits(layer.weight)
    return (bits, exp)


def _bits_optimized_or_default(layer: Layer) -> tuple:
    """tna's loader: optimize_weight_bits, but all-zero kernels keep Lava's default."""
    if not np.any(np.asarray(layer.weight).astype(int)):
        return (LAVA_WEIGHT_BITS, 0)
    return _bits_optimized(layer)


def _bits_default(layer: Layer) -> tuple:
    return (LAVA_WEIGHT_BITS, 0)                     # netx's create_conv passes no weight bits


def weight_bits(layer: Layer, loader: str = "tna") -> tuple:
    """(num_weight_bits, weight_exp) that `loader` configures Lava's synapse with; (0, 0) when
    the layer has no weights."""
    if loader not in LOADERS:
        raise TnaError(f"loader = {loader!r}: choose one of {', '.join(LOADERS)}")
    if layer.weight is None:
        return (0, 0)
    kind = LAYERS.get(layer.type)
    return (kind.weight_bits.get(loader, _bits_default) if kind else _bits_default)(layer)


def optimizes_weights(layer_type: str, loader: str) -> bool:
    """Whether `loader` puts this layer type's weights through optimize_weight_bits."""
    kind = LAYERS.get(layer_type)
    return kind is not None and kind.weight_bits.get(loader, _bits_default) is not _bits_default


# --------------------------------------------------------------------------- skipping layers

def skip_layers(model: NetxModel, n: int, input_message_bits: int = 0) -> tuple:
    """What `netx.hdf5.Network(skip_layers=n)` builds from `model`: (the model it runs, the
    message bits its first layer receives).

    netx still reads the first `n` layers but leaves them out of the network: data enters the
    first layer kept. The input shape becomes the last skipped input or conv layer's shape, and
    the input message bits become the last skipped layer's output bits (messageBits; SDNN
    16), whatever `input_message_bits` says. Intel's tutorials load nets whose input layer has
    a neuron (an encoder netx never connects) with skip_layers=1.
    """
    if n == 0:
        return model, input_message_bits
    if not 0 < n < len(model.layers) or not any(
            layer.type in BLOCK_TYPES for layer in model.layers[n:]):
        raise TnaError(f"skip_layers = {n}: the net has {len(model.layers)} layers "
                       f"({', '.join(layer.type for layer in model.layers)}); keep at least "
                       f"one dense or conv layer")
    shape, bits = None, input_message_bits
    for layer in model.layers[:n]:
        if layer.type in ("input", "conv"):
            shape = tuple(layer.shape)
        if neuron_of(layer) is not None:
            bits = message_bits_of(neuron_of(layer))
    kept = list(model.layers[n:])
    if shape is not None and kept[0].type != "input":
        kept.insert(0, Layer(type="input", shape=shape))
    # tna's metadata describes the whole net's input, which no longer applies
    meta = model.meta and dataclasses.replace(model.meta, input_shape=[])
    return dataclasses.replace(model, layers=kept, meta=meta), bits


# --------------------------------------------------------------------------- the input

def has_input_neuron(model: NetxModel) -> bool:
    """Whether data enters through an input layer with a neuron (an encoder, netx's Input
    block). netx connects `net.inp` to nothing there: Intel's tutorials send the data into
    `net.in_layer.neuron.a_in` every step, and so do tna's backends. That neuron takes the
    data in the step it is sent (no synapse, no pipeline step) and has no bias; netx reads the
    layer's scalar `weight` and `bias` into `net.in_layer.transform` and applies neither."""
    first = model.layers[0] if model.layers else None
    return first is not None and first.type == "input" and first.neuron is not None


def data_reset_offset(model: NetxModel) -> int:
    """netx's `reset_offset` under which every layer resets exactly where a sample's first
    input step reaches it, the sample entering at the first step of each reset window: 1, or
    0 with an input neuron (it is reset first and takes its data without delay)."""
    return 0 if has_input_neuron(model) else 1


INPUT_NEURON_NOTE = (
    "layer/0 (input): an input layer with a neuron; netx connects net.inp to nothing, so feed "
    "your data into net.in_layer.neuron.a_in every step (as Intel's tutorials and `tna run` "
    "do) or load the net with skip_layers=1; netx applies neither the layer's weight nor its "
    "bias (net.in_layer.transform): apply them to your data first")


def input_shape(model: NetxModel) -> tuple:
    """A sample's shape as the net takes it, slayer layout (C, H, W) or (F,), without T: the
    input layer's (netx reads it), else tna's metadata, else the first dense layer's inputs."""
    first = model.layers[0] if model.layers else None
    if first is not None and first.type == "input":
        return tuple(int(s) for s in first.shape)
    if model.meta is not None and model.meta.input_shape:
        return tuple(model.meta.input_shape)
    if first is not None and first.type == "dense" and first.weight is not None:
        return (int(dense_matrix(first).shape[1]),)
    raise TnaError("the file has no input layer and no tna metadata giving its input shape; "
                   "give inputs whose shape matches the first layer")


def is_netx_file(path) -> bool:
    """True for a readable HDF5 file with a top-level 'layer' group (what netx reads)."""
    import h5py
    try:
        with h5py.File(path, "r") as f:
            return "layer" in f
    except OSError:
        return False


# --------------------------------------------------------------------------- checking

def validate(model: NetxModel, input_shape: tuple | None = None, skip_layers: int = 0
             ) -> list[str]:
    """Every problem that stops netx from loading or running the model.

    `input_shape` (slayer layout, e.g. (1, 28, 28) or (784,)) defaults to the metadata's;
    `skip_layers` is netx.hdf5.Network's (the file's first layers are read but not run).
    Returns human-readable lines naming the layer and field; empty when netx runs the model.
    What netx runs but Loihi 2 cannot hold, or runs with silently changed values, is listed by
    `loihi_warnings` instead. Two deliberate refusals of files netx would run: layers of a type
    netx does not know (it skips them silently) and NaN/Inf weights (it casts them to garbage).
    """
    problems: list[str] = []
    if input_shape is None and model.meta is not None and model.meta.input_shape:
        input_shape = tuple(model.meta.input_shape)
    state = _Chain(shape=tuple(input_shape) if input_shape else None)
    if not model.layers:
        return ["the file holds no layers"]
    for i, layer in enumerate(model.layers):
        where = f"layer/{i} ({layer.type})"
        kind = LAYERS.get(layer.type)
        if kind is None:
            problems.append(f"{where}: netx cannot load '{layer.type}' layers "
                            f"(it loads {', '.join(NETX_LOADABLE)}); export pools as grouped convs")
            state = _Chain(shape=tuple(layer.shape))
            continue
        problems += _check_values(layer, where)
        problems += _check_neuron(layer, where)
        if layer.type == "input" and layer.neuron is not None and i > skip_layers:
            problems.append(f"{where}: an input layer with a neuron after layer/{skip_layers}; "
                            f"netx feeds only the first layer it keeps")
        state, chain = kind.chain(layer, state, where)
        problems += [f"{p}; the layers do not chain, re-export the net" for p in chain]
    return problems


def loihi_warnings(model: NetxModel) -> list[str]:
    """What netx runs but Loihi 2 cannot hold (17-bit thresholds, decays in [0, 4096]) or runs
    with other values than the file holds (non-integer weights truncated, weights beyond 8 bits
    clipped, delays beyond 62 clipped)."""
    out: list[str] = []
    for i, layer in enumerate(model.layers):
        if layer.type not in LAYERS:
            continue
        where = f"layer/{i} ({layer.type})"
        out += _warn_values(layer, where)
        out += _warn_neuron(layer, where)
    return out


V_MAX = 2**23 - 1             # Lava clips v to +-(2^23 - 1): 24-bit state


def silent_readout(model: NetxModel) -> str | None:
    """Why the output layer can never spike, so that a spike-count readout predicts class 0
    for every sample (None when it can spike, or when the file's tna metadata reads its
    voltage): no neuron group (netx's default integrator) or a threshold at the top of v's
    range (vThMant << 6 >= V_MAX - 63: tna's non-spiking readout, 2^17 - 1, and above)."""
    if model.meta is not None and model.meta.readout == "voltage":
        return None
    out = next((i for i in reversed(range(len(model.layers)))
                if neuron_of(model.layers[i]) is not None), None)
    if out is None:
        return None
    layer = model.layers[out]
    n = neuron_of(layer)
    if not n.never_spikes:
        return None
    why = ("has no neuron group (netx gives it a non-leaky integrator that never spikes)"
           if layer.neuron is None else
           f"never spikes: its vThMant {n.vth_mant} << 6 is at the top of v's range (v is "
           f"clipped at 2^23 - 1)")
    return f"layer/{out} ({layer.type}), the output layer, {why}"


@dataclass(frozen=True)
class _Chain:
    """What the next layer gets: the incoming shape (None = unknown, slayer layout) and whether
    a flatten layer came just before (netx then flattens (W, H, C) into the next dense)."""
    shape: tuple | None
    flatten_next: bool = False
    from_input: bool = False       # the shape is an input layer's, which netx reads for conv only


def _finite(layer: Layer, name: str):
    w = getattr(layer, name)
    if w is None:
        return None
    w = np.asarray(w, dtype=np.float64)
    return w if np.all(np.isfinite(w)) else None


def _check_values(layer: Layer, where: str) -> list[str]:
    out = []
    for name in ("weight", "weight_rec", "bias", "delay"):
        w = getattr(layer, name)
        if w is not None and not np.all(np.isfinite(np.asarray(w, dtype=np.float64))):
            out.append(f"{where}: {name} holds NaN or Inf; re-export from a checkpoint with "
                       f"finite weights")
    w = _finite(layer, "weight")
    if w is not None and layer.type in ("dense", "dense_rec") and w.size and not np.any(
            w.astype(int)):
        # netx's optimize_weight_bits takes log2 of max |w| and overflows on it
        out.append(f"{where}: every weight is 0, which netx cannot load (its "
                   f"optimize_weight_bits fails); the net did not learn: train it again")
    d = _finite(layer, "delay")
    if d is not None and np.any(d < 0):
        out.append(f"{where}: delay must hold non-negative integers")
    if layer.type == "dense_rec" and layer.weight_rec is None:
        out.append(f"{where}: a dense_rec layer needs a weight_rec dataset (netx reads it)")
    return out


def _warn_values(layer: Layer, where: str) -> list[str]:
    out = []
    for name in ("weight", "weight_rec", "bias", "delay"):
        w = _finite(layer, name)
        if w is None:
            continue
        if np.any(w != np.round(w)):
            bad = w[w != np.round(w)].reshape(-1)[0]
            out.append(f"{where}: {name} holds non-integer values (e.g. {bad:g}); netx truncates "
                       f"them silently, so quantise to integers before export")
        if name in ("weight", "weight_rec") and w.size and (w.min() < WEIGHT_MIN
                                                            or w.max() > WEIGHT_MAX):
            out.append(f"{where}: {name} outside the 8-bit range [{WEIGHT_MIN}, {WEIGHT_MAX}] "
                       f"(min {w.min():g}, max {w.max():g}); quantise weights to 8 bits "
                       f"(lava-dl quantize_8bit) before export")
        if name == "delay" and w.size and w.max() > MAX_DELAY:
            out.append(f"{where}: delays above {MAX_DELAY} steps, which netx clips to "
                       f"{MAX_DELAY}")
    return out


def _check_neuron(layer: Layer, where: str) -> list[str]:
    n = layer.neuron
    if n is None:
        # netx's create_conv reads layer['neuron']; create_dense has a default (neuron_of)
        return [f"{where}: missing neuron group"] if layer.type == "conv" else []
    return n.errors(where)


def _warn_neuron(layer: Layer, where: str) -> list[str]:
    n = layer.neuron
    return [] if n is None or n.errors(where) else n.warnings(where)


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """One spatial size after a convolution (torch's, slayer's and Lava's formula)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv_output_shape(layer: Layer, in_shape: tuple) -> tuple:
    """(C_out, H, W) of a conv layer given its (C, H, W) input."""
    k = np.asarray(layer.weight).shape
    return (k[0], *(conv_output_size(in_shape[1 + a], k[2 + a], layer.stride[a],
                                     layer.padding[a], layer.dilation[a]) for a in (0, 1)))


def _chain_input(layer: Layer, state: _Chain, where: str) -> tuple:
    return _Chain(shape=tuple(layer.shape), from_input=True), []


def _chain_flatten(layer: Layer, state: _Chain, where: str) -> tuple:
    # netx only notes that the next dense layer takes the previous output flattened; the
    # flatten layer's own shape is not read.
    n = int(np.prod(state.shape if state.shape is not None else layer.shape))
    return _Chain(shape=(n,), flatten_next=True), []


def _chain_dense(layer: Layer, state: _Chain, where: str) -> tuple:
    out: list[str] = []
    n_out = int(np.prod(layer.shape))
    try:
        w = dense_matrix(layer)
    except ValueError as e:
        return _Chain(shape=(n_out,)), [f"{where}: {e}"]
    shape = None if state.from_input else state.shape   # netx's dense takes what it is sent
    if shape is not None and len(shape) > 1 and not state.flatten_next:
        out.append(f"{where}: a dense layer after a {shape} output needs a flatten layer "
                   f"before it (netx connects the shapes as they are)")
    elif shape is not None and int(np.prod(shape)) != w.shape[1]:
        out.append(f"{where}: weight expects {w.shape[1]} inputs but the previous layer "
                   f"gives {int(np.prod(shape))} (shape {shape})")
    if layer.type == "dense_rec" and layer.weight_rec is not None and \
            np.asarray(layer.weight_rec).size != n_out * n_out:
        out.append(f"{where}: weight_rec must hold {n_out} x {n_out} values")
    return _Chain(shape=(n_out,)), out


def _chain_conv(layer: Layer, state: _Chain, where: str) -> tuple:
    out: list[str] = []
    w = layer.weight
    own = _Chain(shape=tuple(layer.shape))
    if w is None or w.ndim != 4:
        return own, [f"{where}: weight must be 4-D (out, in/groups, kh, kw)"]
    if layer.groups is None or layer.groups < 1:
        return own, [f"{where}: groups must be ≥ 1"]
    if len(layer.shape) != 3:
        return own, [f"{where}: conv shape must be (C, H, W), got {layer.shape}"]
    if min(layer.stride + layer.dilation) < 1 or min(layer.padding) < 0:
        return own, [f"{where}: stride {layer.stride} and dilation {layer.dilation} must be "
                     f"≥ 1, padding {layer.padding} ≥ 0"]
    shape = state.shape
    if shape is not None:
        if len(shape) != 3:
            out.append(f"{where}: conv needs (C, H, W) input, the previous layer gives {shape}")
        elif shape[0] != w.shape[1] * layer.groups:
            out.append(f"{where}: weight expects {w.shape[1] * layer.groups} input "
                       f"channels, the previous layer has {shape[0]}")
        elif conv_output_shape(layer, shape) != tuple(layer.shape):
            out.append(f"{where}: output shape {layer.shape} does not match "
                       f"{conv_output_shape(layer, shape)} computed from input {shape}")
    return own, out


# --------------------------------------------------------------------------- the layer table

@dataclass(frozen=True)
class LayerKind:
    """Everything tna knows about one netx layer type."""
    read: Callable             # (h5py group, where) -> Layer
    write: Callable            # (h5py group, Layer): the type's own fields (type, shape, weight,
                               # bias, delay, weight_rec and neuron are common)
    chain: Callable            # (Layer, incoming _Chain, where) -> (outgoing _Chain, problems)
    weight_bits: dict          # loader ('tna' | 'netx') -> rule: Layer -> (bits, exponent)
    block: bool                # netx builds a Lava block with neurons (one step of pipeline delay)


_OPTIMIZED = {"netx": _bits_optimized, "tna": _bits_optimized}
# The layer types netx loads (dense_comp is not among them: netx 0.6 calls a
# create_complex_dense it does not define). Adding a layer feature = one entry + its tests.
LAYERS: dict[str, LayerKind] = {
    "input": LayerKind(_read_plain("input"), _write_nothing, _chain_input, {}, block=False),
    "flatten": LayerKind(_read_plain("flatten"), _write_nothing, _chain_flatten, {},
                         block=False),
    "dense": LayerKind(_read_dense, _write_dense, _chain_dense, _OPTIMIZED, block=True),
    "dense_rec": LayerKind(_read_plain("dense_rec"), _write_nothing, _chain_dense, _OPTIMIZED,
                           block=True),
    "conv": LayerKind(_read_conv, _write_conv, _chain_conv,
                      {"netx": _bits_default, "tna": _bits_optimized_or_default}, block=True),
}
NETX_LOADABLE = tuple(LAYERS)
BLOCK_TYPES = tuple(t for t, kind in LAYERS.items() if kind.block)   # one Lava block each


def validate_or_raise(model: NetxModel, where: str = "", skip_layers: int = 0) -> None:
    problems = validate(model, skip_layers=skip_layers)
    if problems:
        more = f" (+{len(problems) - 1} more; run `tna validate`)" if len(problems) > 1 else ""
        raise TnaError(f"{where}{': ' if where else ''}{problems[0]}{more}")
