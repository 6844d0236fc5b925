"""`self-distill`: temporal self-distillation, after Ding et al., "Synergy Between the Strong and
the Weak: Spiking Neural Networks are Inherently Self-Distillers", NeurIPS 2025, arXiv 2510.07924.

Each time step's output o(t) is a sub-network's prediction. The confidence of step t is the batch
mean of max softmax(o(t)) (measured without gradient). With τ = `--sd-temperature`, λ =
`--sd-lambda`:

  L = CE(base) + λ · KL(softmax(o(teacher) / τ) ‖ softmax(o(student) / τ)),  teacher detached

  strong2weak  the most confident step teaches the least confident (the default)
  weak2strong  the least confident step teaches the most confident
  cascade      steps sorted by confidence, each teaches the next less confident one; the mean of
               the T − 1 terms (tna's reading of a chain: no formula in the public text)

The KL is not multiplied by τ² (the paper's formula has no τ²; λ takes that role).

o(t) is the readout per step, `Outputs.steps`: the output layer's membrane voltage v[t] with the
voltage readout (spike count per step with --readout spike). Why v[t]: the logits every method
trains and Loihi deploys are Σ_t v[t], so v[t] is the step's share of exactly the deployed
prediction, and mean_t o(t) is the logits / T. The paper's CE(mean_t o(t), y) is taken here as
CE of the logits (Σ_t = T · mean_t): the factor T is the logit scale tna's readout init is tuned
for (tna.models.snn), and it makes the CE the one term `ce_base` that single and tna use, so
`self-distill` with λ = 0 trains as `single`, and `tna+self-distill` holds one base CE.
"""
from __future__ import annotations

from dataclasses import dataclass

from tna.errors import TnaError
from tna.train.methods.base import kl_to, register_method
from tna.train.methods.single import ce_base

SD_MODES = ("strong2weak", "weak2strong", "cascade")


@dataclass(frozen=True)
class SelfDistillOptions:
    sd_mode: str = "strong2weak"   # self-distill: strong2weak (best step teaches worst), weak2strong, cascade
    sd_lambda: float = 1.0         # self-distill: weight λ of the step-to-step KL (the paper's 1)
    sd_temperature: float = 2.0    # self-distill: softmax temperature τ of the KL (the paper's 2)

    @staticmethod
    def validate(cfg) -> None:
        if cfg.sd_mode not in SD_MODES:
            raise TnaError(f"sd_mode = {cfg.sd_mode!r}: choose one of {', '.join(SD_MODES)}")
        if not cfg.sd_lambda >= 0:
            raise TnaError(f"sd_lambda = {cfg.sd_lambda!r}: must be ≥ 0")
        if not cfg.sd_temperature > 0:
            raise TnaError(f"sd_temperature = {cfg.sd_temperature!r}: must be > 0")


def confidence(steps):
    """(T,): the batch mean of max softmax(o(t)) for each step t of `steps` (N, classes, T)."""
    import torch
    with torch.no_grad():
        return torch.softmax(steps, dim=1).amax(dim=1).mean(dim=0)


def pairs(steps, mode: str) -> list:
    """(teacher step, student step) pairs of `mode`, from the steps' confidence."""
    conf = confidence(steps)
    order = [int(t) for t in conf.argsort(descending=True, stable=True)]   # most confident first
    if mode == "strong2weak":
        return [(order[0], order[-1])]
    if mode == "weak2strong":
        return [(order[-1], order[0])]
    return list(zip(order[:-1], order[1:]))              # cascade


def self_distill_kl(steps, mode: str, temperature: float):
    """The mean KL over the pairs of `mode` (0 with one step: a step cannot teach itself)."""
    found = [kl_to(steps[..., a], steps[..., b], temperature) for a, b in pairs(steps, mode)
             if a != b]
    if not found:
        return steps.sum() * 0.0
    return sum(found[1:], found[0]) / len(found)


def terms(out, cfg) -> dict:
    return {"ce_base": (1, ce_base(out, cfg)),
            "sd_kl": (cfg.sd_lambda, self_distill_kl(out.steps, cfg.sd_mode, cfg.sd_temperature))}


register_method("self-distill", terms, order=40, per_step=True, options=SelfDistillOptions,
                label="self-distill", marker="D", compare=True,
                source="Ding et al., NeurIPS 2025, arXiv 2510.07924 (temporal self-distillation)")
