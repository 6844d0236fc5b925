"""Architecture specs: a short string such as `16c3-32c3s2-64c3s2-256-10`, or a preset name.

Tokens, separated by '-':
  `<C>c<k>[s<s>][p<p>]`  CUBA conv block: C output channels, k×k kernel, stride s (1), padding p (k//2)
  `ap<k>`                 average pool k×k (stride k): a CUBA pool block with weights 1/k²
  `<N>` or `<N>fc`        CUBA dense block with N neurons (a flatten is inserted after the last conv;
                          a net that starts dense is fed flattened input)
  `out`                   dense output block with one neuron per class (also: a final plain number)
Case is ignored, so the paper's `128C3-256C3-AP2-...-Out` reads as written.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from tna.errors import TnaError
from tna.netx import conv_output_size

PRESETS = {
    # Two hidden dense layers: fastest; for digits and quick checks.
    "mlp": "256-128-out",
    # Strided convs keep the maps small so that one Fashion-MNIST epoch takes a few CPU minutes.
    "conv-small": "16c3s2-32c3s2-64c3-256-out",
    # The paper's CIFARNet, exactly.
    "cifarnet": "128c3-256c3-ap2-512c3-ap2-1024c3-512c3-1024-512-out",
}

_CONV = re.compile(r"^(\d+)c(\d+)(?:s(\d+))?(?:p(\d+))?$")
_POOL = re.compile(r"^ap(\d+)$")
_FC = re.compile(r"^\d+fc$")


@dataclass(frozen=True)
class LayerSpec:
    kind: str                  # 'conv' | 'pool' | 'flatten' | 'dense'
    out: int = 0               # channels (conv) or neurons (dense)
    kernel: int = 0
    stride: int = 1
    padding: int = 0
    in_shape: tuple = ()       # slayer layout: (C, H, W) or (F,)
    out_shape: tuple = ()


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a model; saved in checkpoints as a plain dict."""
    arch: str                                  # preset name or spec string, as given
    in_shape: tuple                            # (C, H, W) of one input sample
    num_classes: int
    threshold: float = 0.5                     # slayer units (vThMant / 64)
    current_decay: float = 0.25                # fraction per step (iDecay / 4096)
    voltage_decay: float = 0.03                # fraction per step (vDecay / 4096)
    weight_scale: float = 4.0                  # init scaling; keeps hidden layers alive at T = 5
    dropout: float = 0.2                       # on FC (dense) layers, as in the paper
    readout: str = "voltage"                   # 'voltage' (sum of output v) or 'spike' (count)
    input_scale: float = 1.0                   # model input = data integers * input_scale
    readout_init: float = 0.1   # output layer init scale, relative to weight_scale
    # Surrogate gradient of the spike, relative to slayer's defaults (1.0, 1.0). Training only:
    # the forward pass, and so the exported net, does not depend on them.
    tau_grad: float = 1.0
    scale_grad: float = 1.0
    # Learned decays: each layer's current and voltage decay is a trained parameter (slayer's
    # requires_grad), clamped to [0, 4096] and rounded to the 1/4096 grid in every forward pass,
    # so the exported iDecay / vDecay are the values trained with.
    learn_decays: bool = False
    layers: tuple = field(default=(), compare=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("layers")
        d["in_shape"] = list(self.in_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        d = dict(d)
        d["in_shape"] = tuple(d["in_shape"])
        return make_spec(**d)


def make_spec(arch: str, in_shape, num_classes: int, **kw) -> ModelSpec:
    if kw.get("readout", "voltage") not in ("voltage", "spike"):
        raise TnaError(f"readout must be 'voltage' or 'spike', got {kw['readout']!r}")
    layers = parse_arch(arch, tuple(in_shape), num_classes)
    return ModelSpec(arch=arch, in_shape=tuple(in_shape), num_classes=num_classes,
                     layers=tuple(layers), **kw)


def parse_arch(arch: str, in_shape: tuple, num_classes: int) -> list[LayerSpec]:
    """Expand a preset or spec string into layers with their shapes; TnaError when it is bad."""
    text = PRESETS.get(arch, arch)
    tokens = [t.strip().lower() for t in text.split("-") if t.strip()]
    tokens = [t[:-2] if _FC.match(t) else t for t in tokens]   # the paper writes 1024FC
    if not tokens:
        raise TnaError(f"--arch {arch!r} is empty; use a preset ({', '.join(PRESETS)}) "
                       f"or a spec like 16c3-32c3s2-256-10")
    shape = tuple(in_shape)
    layers: list[LayerSpec] = []
    for i, tok in enumerate(tokens):
        last = i == len(tokens) - 1
        if tok == "out" and not last:
            raise TnaError(f"--arch {arch!r}: 'out' must be the last layer")
        if last and (tok == "out" or tok.isdigit()):
            n = num_classes if tok == "out" else int(tok)
            if n != num_classes:
                raise TnaError(f"--arch {arch!r} ends in {n} outputs but the data set has "
                               f"{num_classes} classes; end it with 'out' or {num_classes}")
            tok = str(n)
        if m := _CONV.match(tok):
            if len(shape) != 3:
                raise TnaError(f"--arch {arch!r}: conv '{tok}' after a dense layer; "
                               f"put convs before dense layers")
            c, k = int(m[1]), int(m[2])
            s = int(m[3]) if m[3] else 1
            p = int(m[4]) if m[4] else k // 2
            h, w = (conv_output_size(size, k, s, p, dilation=1) for size in shape[1:])
            if min(c, k, s, h, w) < 1:
                raise TnaError(f"--arch {arch!r}: '{tok}' gives an empty output for input {shape}")
            layers.append(LayerSpec("conv", c, k, s, p, shape, (c, h, w)))
            shape = (c, h, w)
        elif m := _POOL.match(tok):
            k = int(m[1])
            if len(shape) != 3 or k < 1 or shape[1] % k or shape[2] % k:
                raise TnaError(f"--arch {arch!r}: pool '{tok}' needs a (C, H, W) input whose H "
                               f"and W are multiples of {k}, got {shape}")
            layers.append(LayerSpec("pool", shape[0], k, k, 0, shape,
                                    (shape[0], shape[1] // k, shape[2] // k)))
            shape = layers[-1].out_shape
        elif tok.isdigit():
            if len(shape) == 3:
                flat = (shape[0] * shape[1] * shape[2],)
                if layers:   # a net that starts dense gets flattened input instead
                    layers.append(LayerSpec("flatten", flat[0], in_shape=shape, out_shape=flat))
                shape = flat
            n = int(tok)
            if n < 1:
                raise TnaError(f"--arch {arch!r}: dense layer '{tok}' needs at least 1 neuron")
            layers.append(LayerSpec("dense", n, in_shape=shape, out_shape=(n,)))
            shape = (n,)
        else:
            raise TnaError(f"--arch {arch!r}: cannot read layer '{tok}'; use e.g. 16c3, 32c3s2, "
                           f"ap2, 256 or out")
    if layers[-1].kind != "dense" or layers[-1].out != num_classes:
        raise TnaError(f"--arch {arch!r} must end in a dense layer of {num_classes} outputs "
                       f"('out')")
    return layers
