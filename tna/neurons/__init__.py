"""Neuron models, one module each: what a netx `neuron` group means, and how tna runs it.

  cuba     Loihi's CUBA LIF (netx CUBA, LOIHI): read, written, emulated, referenced, NIR
  sdnn     sigma-delta (netx SDNN): read, written, validated; Lava runs it
  rf       resonate-and-fire (netx *RF*): read and written; netx 0.6 cannot connect it
  unknown  any other type: kept as read, so that validate names it

A model is a dataclass subclassing `Neuron` (tna.neurons.base says what each consumer asks of
it), registered with `@register_neuron` in a module of this package; every module here is
imported below, so adding a neuron type touches its own module only (and the netx layer table,
if it brings a layer type). Consumers ask the model, never compare a type string.
"""
import importlib
import pkgutil

from tna.neurons.base import (ACT_SHIFT, NON_SPIKING_VTH_MANT, P_SCALE, STATE_SCALE, UV_MAX,
                              VTH_MANT_MAX, W_SCALE, Discrete, Neuron)
from tna.neurons.registry import (NEURONS, from_fields, handled_by, model_for, refusal,
                                  register_neuron, unregister_neuron)

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in ("base", "registry", "unknown"):
        importlib.import_module(f"{__name__}.{_module.name}")

from tna.neurons.cuba import Cuba  # noqa: E402
from tna.neurons.rf import Rf  # noqa: E402
from tna.neurons.sdnn import Sdnn  # noqa: E402
from tna.neurons.unknown import Unknown  # noqa: E402

__all__ = ["ACT_SHIFT", "NEURONS", "NON_SPIKING_VTH_MANT", "P_SCALE", "STATE_SCALE", "UV_MAX",
           "VTH_MANT_MAX", "W_SCALE", "Cuba", "Discrete", "Neuron", "Rf", "Sdnn", "Unknown",
           "from_fields", "handled_by", "model_for", "refusal", "register_neuron",
           "unregister_neuron"]
