"""Weight compression of a trained SNN's hidden layers, shaped like torchao's `quantize_`.

    ternarize_(model, TernaryConfig(delta=0.1))

Ternary (the paper's Eq. 6), in slayer weight units (1.0 = integer 64 on Loihi):
    w_t = 0        if |w| <= delta
          sign(w)  otherwise
Binary: w_b = sign(w), with sign(0) = +1.
Both may be scaled per layer to ±s, s a power of two (`scale="pow2"`): still 2 bits on Loihi.

The first and last synapse layers keep slayer's 8-bit weights. The latent full-precision
weights stay in `synapse.weight` and keep training: the forward pass uses the compressed weights
and the gradient passes straight through to the latent ones (STE). Pool blocks have fixed
weights and are left alone. On Loihi the compressed layers hold {-64, 0, 64}, which netx stores
as 2-bit weights.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from tna.errors import TnaError
from tna.netx import W_SCALE   # slayer float weight * 64 = Loihi integer weight


SCALES = ("one", "pow2")


def _check_scale(scale, scales):
    if scale not in SCALES:
        raise TnaError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
    if scales is not None and not all(POW2_MIN <= float(s) <= POW2_MAX for s in scales):
        raise TnaError(f"scales must lie in [{POW2_MIN}, {POW2_MAX}], got {list(scales)}")


@dataclass(frozen=True)
class TernaryConfig:
    delta: float = 0.1      # |w| <= delta -> 0, in slayer units
    scale: str = "one"      # one: ±1 (the paper) | pow2: ±s per layer, s a power of two
    scales: tuple | None = None   # fixed s per hidden layer (from a checkpoint); None = compute

    def __post_init__(self):
        if not (self.delta >= 0 and self.delta < 4):
            raise TnaError(f"delta must be in [0, 4) (slayer weight units), got {self.delta}")
        _check_scale(self.scale, self.scales)


@dataclass(frozen=True)
class BinaryConfig:
    scale: str = "one"
    scales: tuple | None = None

    def __post_init__(self):
        _check_scale(self.scale, self.scales)


# pow2 scales in slayer units: 1/64 is Loihi integer 1, 2 is integer 128 (inside 8 bits).
POW2_MIN, POW2_MAX = 1.0 / W_SCALE, 2.0


def pow2_scale(w: torch.Tensor, delta: float = 0.0) -> float:
    """The power of two nearest (in log) to the mean |w| of the weights that stay non-zero.

    A layer of {-s, 0, s} with s a power of two is still 2 bits on Loihi (netx stores the
    exponent once per layer), but its spikes carry about the current the 8-bit weights carried,
    so switching to ternary does not shift every neuron's operating point as ±1 does.
    """
    kept = w.detach().abs()
    kept = kept[kept > delta]
    if kept.numel() == 0:
        return 1.0
    s = 2.0 ** round(float(torch.log2(kept.mean())))
    return min(max(s, POW2_MIN), POW2_MAX)


def ternary(w: torch.Tensor, delta: float) -> torch.Tensor:
    """Eq. 6 without gradient: 0 where |w| <= delta, sign(w) elsewhere."""
    return torch.where(w.abs() <= delta, torch.zeros_like(w), torch.sign(w))


def binary(w: torch.Tensor) -> torch.Tensor:
    return torch.where(w >= 0, torch.ones_like(w), -torch.ones_like(w))


class _Hook:
    """A slayer `pre_hook_fx`: compressed forward, straight-through backward.

    Accepts `descale` like slayer's quantize hook, so lava-dl's own `export_hdf5` writes the
    compressed integers.
    """

    def __init__(self, fn, mode: str, delta: float | None, scale: float = 1.0):
        self.fn, self.mode, self.delta, self.scale = fn, mode, delta, scale

    def __call__(self, w: torch.Tensor, descale: bool = False) -> torch.Tensor:
        q = w + (self.fn(w) * self.scale - w).detach()
        return q * W_SCALE if descale else q


def _hidden_synapse_blocks(model) -> list:
    blocks = [b for b in model.synapse_blocks if b.synapse.weight.requires_grad]
    if len(blocks) < 3:
        raise TnaError("compression leaves the first and last layers at 8 bits, so the net needs "
                       "at least one hidden weight layer (3 layers with weights)")
    return blocks[1:-1]


def ternarize_(model, config: TernaryConfig = TernaryConfig()) -> list[int]:
    """Make the hidden layers of `model` ternary in place; returns their block indices."""
    return _install(model, lambda w: ternary(w, config.delta), "ternary", config.delta, config)


def binarize_(model, config: BinaryConfig = BinaryConfig()) -> list[int]:
    """Make the hidden layers of `model` binary (sign) in place; returns their block indices."""
    return _install(model, binary, "binary", 0.0, config)


def _install(model, fn, mode, delta, config) -> list[int]:
    blocks = _hidden_synapse_blocks(model)
    if config.scales is not None and len(config.scales) != len(blocks):
        raise TnaError(f"{len(config.scales)} scales given for {len(blocks)} hidden layers")
    indices = []
    for i, block in enumerate(blocks):
        if config.scales is not None:
            s = float(config.scales[i])
        elif config.scale == "pow2":
            s = pow2_scale(block.synapse.weight, delta)
        else:
            s = 1.0
        block.synapse._pre_hook_fx = _Hook(fn, mode, None if mode == "binary" else delta, s)
        indices.append(list(model.blocks).index(block))
    return indices


def compression_scales(model) -> list[float]:
    """The ±s of each compressed layer, in order (1.0 for the paper's ±1)."""
    return [b.synapse._pre_hook_fx.scale for b in model.synapse_blocks
            if compression_of(b) != "8bit"]


def compression_of(block) -> str:
    """'ternary', 'binary' or '8bit' for a block's synapse."""
    hook = getattr(block.synapse, "_pre_hook_fx", None)
    return hook.mode if isinstance(hook, _Hook) else "8bit"


def effective_weight(block) -> torch.Tensor:
    """The weight the forward pass uses (slayer units), as slayer computes it."""
    syn = block.synapse
    return syn._pre_hook_fx(syn.weight) if syn._pre_hook_fx is not None else syn.weight
