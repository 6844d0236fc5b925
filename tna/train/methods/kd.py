"""`kd` and `kd-ce`: knowledge distillation from a frozen teacher (`--teacher CHECKPOINT`).

  kd     D(logits_base, logits_teacher)
  kd-ce  CE(base) + alpha * D(logits_base, logits_teacher)

D is `--kd-loss`: mse (the paper's Fig. 3 comparison, the default) or kl = τ² · KL(softmax(
teacher/τ) ‖ softmax(base/τ)) at τ = `--kd-temperature` (Hinton et al.'s τ² keeps the
gradient's scale as τ changes). KL into binary weights is the distillation of SEI-BWSNN (Meng et
al., arXiv 2508.12609) that deploys unchanged; its shortcuts do not (netx holds chains).
"""
from __future__ import annotations

from dataclasses import dataclass

from tna.errors import TnaError
from tna.train.methods.base import kl_to, register_method
from tna.train.methods.single import ce_base

KD_LOSSES = ("mse", "kl")


@dataclass(frozen=True)
class KdOptions:
    kd_loss: str = "mse"           # kd, kd-ce: distance to the teacher: mse (the paper) | kl (τ²·KL)
    kd_temperature: float = 2.0    # kd, kd-ce with --kd-loss kl: softmax temperature τ

    @staticmethod
    def validate(cfg) -> None:
        if cfg.kd_loss not in KD_LOSSES:
            raise TnaError(f"kd_loss = {cfg.kd_loss!r}: choose one of {', '.join(KD_LOSSES)}")
        if not cfg.kd_temperature > 0:
            raise TnaError(f"kd_temperature = {cfg.kd_temperature!r}: must be > 0")


def distance(out, cfg) -> dict:
    """{term name: value} of D(base, teacher): 'mse' or 'kd_kl'."""
    import torch.nn.functional as F
    if cfg.kd_loss == "kl":
        tau = cfg.kd_temperature
        return {"kd_kl": tau * tau * kl_to(out.teacher, out.logits, tau)}
    return {"mse": F.mse_loss(out.logits, out.teacher)}


def kd_terms(out, cfg) -> dict:
    return {k: (1, v) for k, v in distance(out, cfg).items()}


def kd_ce_terms(out, cfg) -> dict:
    terms = {"ce_base": (1, ce_base(out, cfg))}
    terms.update({k: (cfg.alpha, v) for k, v in distance(out, cfg).items()})
    return terms


register_method("kd", kd_terms, order=20, nets="teacher", options=KdOptions, label="KD",
                marker="^", paper_rival="knowledge distillation",
                source="distillation from a frozen teacher (Fig. 3); --kd-loss kl: as "
                       "SEI-BWSNN, arXiv 2508.12609")
register_method("kd-ce", kd_ce_terms, order=30, nets="teacher", label="KD+CE", marker="v",
                uses_alpha=True, paper_rival="KD+CE",
                source="CE plus alpha-weighted distillation from a frozen teacher (Fig. 3)")
