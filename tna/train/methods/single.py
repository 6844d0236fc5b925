"""`single`: one network trained on cross-entropy, CE(base). The baseline every method is
measured against, and the CE term (`ce_base`) most methods share."""
from __future__ import annotations

from tna.train.methods.base import register_method


def ce_base(out, cfg):
    """CE of the base's logits; PyTorch's label smoothing (`--label-smoothing`, 0 = plain)."""
    import torch.nn.functional as F
    return F.cross_entropy(out.logits, out.labels, label_smoothing=cfg.label_smoothing)


def terms(out, cfg) -> dict:
    return {"ce_base": (1, ce_base(out, cfg))}


register_method("single", terms, order=0, combines=False, label="single", marker="o",
                role="baseline",
                paper={"fp": 94.90, "ternary": 94.95, "binary": 94.80},   # Deckers et al. (%)
                source="a single SNN trained on cross-entropy (the baseline)")
