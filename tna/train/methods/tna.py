"""`tna`: Twin Network Augmentation (Deckers et al.), the paper's Eq. 5:
CE(base) + CE(twin) + alpha * MSE(logits_base, logits_twin), base and twin trained together
(the twin is initialised with seed + 1 and never deployed)."""
from __future__ import annotations

from tna.train.methods.base import register_method
from tna.train.methods.single import ce_base


def terms(out, cfg) -> dict:
    import torch.nn.functional as F
    return {"ce_base": (1, ce_base(out, cfg)),
            "ce_twin": (1, F.cross_entropy(out.twin, out.labels,
                                           label_smoothing=cfg.label_smoothing)),
            "mse": (cfg.alpha, F.mse_loss(out.logits, out.twin))}


register_method("tna", terms, order=10, nets="twin", label="TNA", marker="s",
                uses_alpha=True, role="main",
                paper={"fp": 95.31, "ternary": 95.24},   # the paper's F-MNIST results (%)
                source="Deckers et al., Twin Network Augmentation (the paper)")
