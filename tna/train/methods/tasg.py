"""`tasg`: temporally adjacent sub-network guidance, after Ding et al., "Rethinking Spiking Neural
Networks from an Ensemble Learning Perspective", ICLR 2025, arXiv 2502.14218.

A reconstruction: the public text says that adjacent time steps' outputs distil into each other
and that some pair terms are dropped at random, but not the direction, temperature or weight.
tna's form, with o(t) the readout per step (the output voltage v[t]; see
tna.train.methods.self_distill for why), τ = `--tasg-temperature`, p = `--tasg-drop`:

  L = CE(base) + w · mean over the kept terms of KL(softmax(o(a) / τ) ‖ softmax(o(b) / τ))

over both directions (a, b) = (t, t+1) and (t+1, t) of every adjacent pair, the teacher o(a)
detached. Each of the 2(T − 1) directed terms is dropped independently with probability p (0.5
by default: about half the guidance each batch), drawn from torch's global CPU generator, which
checkpoints save (so a resumed run draws the same); a batch whose terms are all dropped adds 0.
No τ² factor (as self-distill; w = `--tasg-weight` takes that role).
"""
from __future__ import annotations

from dataclasses import dataclass

from tna.errors import TnaError
from tna.train.methods.base import kl_to, register_method
from tna.train.methods.single import ce_base


@dataclass(frozen=True)
class TasgOptions:
    tasg_weight: float = 1.0       # tasg: weight w of the adjacent-step KL
    tasg_drop: float = 0.5         # tasg: chance to drop each directed adjacent-step term (a reconstruction)
    tasg_temperature: float = 2.0  # tasg: softmax temperature τ of the KL (a reconstruction)

    @staticmethod
    def validate(cfg) -> None:
        if not cfg.tasg_weight >= 0:
            raise TnaError(f"tasg_weight = {cfg.tasg_weight!r}: must be ≥ 0")
        if not 0 <= cfg.tasg_drop < 1:
            raise TnaError(f"tasg_drop = {cfg.tasg_drop!r}: must be in [0, 1)")
        if not cfg.tasg_temperature > 0:
            raise TnaError(f"tasg_temperature = {cfg.tasg_temperature!r}: must be > 0")


def directed_pairs(timesteps: int) -> list:
    """(teacher, student) steps: (t, t+1) and (t+1, t) for t = 0 .. T-2."""
    return [p for t in range(timesteps - 1) for p in ((t, t + 1), (t + 1, t))]


def tasg_kl(steps, drop: float, temperature: float, keep=None):
    """The mean KL over the kept directed adjacent-step terms of `steps` (N, classes, T).
    `keep` (bools, one per directed pair) is drawn with probability 1 - drop when not given."""
    import torch
    pairs = directed_pairs(steps.shape[-1])
    if keep is None:                # CPU generator: saved by checkpoints; none drawn at p = 0
        keep = (torch.rand(len(pairs)) >= drop).tolist() if drop > 0 else [True] * len(pairs)
    found = [kl_to(steps[..., a], steps[..., b], temperature)
             for (a, b), k in zip(pairs, keep) if k]
    if not found:
        return steps.sum() * 0.0
    return sum(found[1:], found[0]) / len(found)


def terms(out, cfg) -> dict:
    return {"ce_base": (1, ce_base(out, cfg)),
            "tasg_kl": (cfg.tasg_weight, tasg_kl(out.steps, cfg.tasg_drop, cfg.tasg_temperature))}


register_method("tasg", terms, order=50, per_step=True, options=TasgOptions, label="TASG",
                marker="P", compare=True,
                source="Ding et al., ICLR 2025, arXiv 2502.14218 (TASG; a reconstruction)")
