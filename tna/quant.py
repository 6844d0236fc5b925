"""Weight compression of a trained SNN's hidden layers, shaped like torchao's `quantize_`.

    ternarize_(model, TernaryConfig(delta=0.1))

Ternary (the paper's Eq. 6), in slayer weight units (1.0 = integer 64 on Loihi):
    w_t = 0        if |w| <= delta
          sign(w)  otherwise
Binary: w_b = sign(w), with sign(0) = +1.

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


@dataclass(frozen=True)
class TernaryConfig:
    delta: float = 0.1   # |w| <= delta -> 0, in slayer units

    def __post_init__(self):
        if not (self.delta >= 0 and self.delta < 4):
            raise TnaError(f"delta must be in [0, 4) (slayer weight units), got {self.delta}")


@dataclass(frozen=True)
class BinaryConfig:
    pass


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

    def __init__(self, fn, mode: str, delta: float | None):
        self.fn, self.mode, self.delta = fn, mode, delta

    def __call__(self, w: torch.Tensor, descale: bool = False) -> torch.Tensor:
        q = w + (self.fn(w) - w).detach()
        return q * W_SCALE if descale else q


def _hidden_synapse_blocks(model) -> list:
    blocks = [b for b in model.synapse_blocks if b.synapse.weight.requires_grad]
    if len(blocks) < 3:
        raise TnaError("compression leaves the first and last layers at 8 bits, so the net needs "
                       "at least one hidden weight layer (3 layers with weights)")
    return blocks[1:-1]


def ternarize_(model, config: TernaryConfig = TernaryConfig()) -> list[int]:
    """Make the hidden layers of `model` ternary in place; returns their block indices."""
    hook = _Hook(lambda w: ternary(w, config.delta), "ternary", config.delta)
    return _install(model, hook)


def binarize_(model, config: BinaryConfig = BinaryConfig()) -> list[int]:
    """Make the hidden layers of `model` binary (sign) in place; returns their block indices."""
    return _install(model, _Hook(binary, "binary", None))


def _install(model, hook) -> list[int]:
    indices = []
    for block in _hidden_synapse_blocks(model):
        block.synapse._pre_hook_fx = hook
        indices.append(list(model.blocks).index(block))
    return indices


def compression_of(block) -> str:
    """'ternary', 'binary' or '8bit' for a block's synapse."""
    hook = getattr(block.synapse, "_pre_hook_fx", None)
    return hook.mode if isinstance(hook, _Hook) else "8bit"


def effective_weight(block) -> torch.Tensor:
    """The weight the forward pass uses (slayer units), as slayer computes it."""
    syn = block.synapse
    return syn._pre_hook_fx(syn.weight) if syn._pre_hook_fx is not None else syn.weight
