"""Training methods, one module each, registered with `register_method`.

  single        CE(base)                                                     (baseline)
  tna           CE(base) + CE(twin) + alpha * MSE(logits_base, logits_twin)  (the paper's Eq. 5)
  kd, kd-ce     distillation from a frozen teacher: MSE or KL (--kd-loss)
  self-distill  the most confident time step teaches the least (Ding et al., NeurIPS 2025)
  tasg          adjacent time steps teach each other (Ding et al., ICLR 2025; a reconstruction)

A method declares, in its module: its loss terms, the extra network it trains (twin, teacher,
none), its options (a frozen dataclass whose fields become TrainConfig fields, `--flags` and
YAML keys) and how the bench names and groups it (`Method`). Every module here is imported
below, so adding a method touches its own module only; `METHODS` (name -> Method) is the only
list of names. Methods compose: `--method tna+self-distill` sums both methods' terms
(tna.train.methods.base). Importing this package is light: the terms import torch when called.
"""
import importlib
import pkgutil

from tna.train.methods.base import (METHODS, SEP, Method, Outputs, extra_net, label,
                                    loss_terms, option_classes, parse_method, per_step,
                                    register_method, unregister_method, uses_alpha)

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["METHODS", "SEP", "Method", "Outputs", "extra_net", "label", "loss_terms",
           "option_classes", "parse_method", "per_step", "register_method",
           "unregister_method", "uses_alpha"]
