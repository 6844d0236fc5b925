"""The backends `tna run` runs a net on, one module each, registered by a decorator.

  reference  the netx file evaluated with lava-dl slayer (tna.reference)
  emulator   tna's bit-exact batched emulator of Lava fixed_pt (tna.sim)
  lava-sim   the real Lava simulator, Loihi2SimCfg(select_tag='fixed_pt') (tna.lava.runner)
  loihi2     Loihi 2 through lava-loihi (same runner, Loihi2HwCfg)

A backend is a class with the `Backend` protocol's `run(job)` and `unsupported(model)`,
registered with `@register_backend("name")` in a module of this package; every module here is
imported below, so adding a backend touches its own module only. `BACKENDS` (name -> backend)
is the only list of names. Importing this package is light: backends import torch or Lava
inside `run`.
"""
import importlib
import pkgutil

from tna.deploy.backends.base import (BACKENDS, Backend, BackendOutput, Job, logits,
                                      register_backend)

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["BACKENDS", "Backend", "BackendOutput", "Job", "logits", "register_backend"]
