"""What every neuron model gives the rest of tna, and Loihi's fixed-point units.

A neuron model is a dataclass holding one netx `neuron` group's values in Loihi's integer
units. Each consumer asks it, never a type string:

    netx       from_fields / to_fields (the group's datasets), errors / warnings (validate)
    sim        stepper(): the fixed-point step the emulator runs (None: not emulated)
    reference  slayer_params(): slayer CUBA neuron parameters the reference runs (None: none)
    nir        normal_form(): the neuron as NIR's discrete-time normal form (None: no NIR form)
    estimate   out_bits: bits of the messages it sends

A consumer that gets None refuses the net in one line naming the layer
(tna.neurons.registry.refusal).
"""
from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Callable, ClassVar

import numpy as np

from tna.errors import TnaError

W_SCALE = 64                  # slayer float weight * 64 = integer weight; threshold likewise
P_SCALE = 4096                # decays: slayer fraction * 4096 = integer decay
STATE_SCALE = 64 * 64         # slayer float u/v * 4096 = Lava integer u/v
VTH_MANT_MAX = 2**17 - 1      # Loihi 2 threshold mantissa is 17 bits
NON_SPIKING_VTH_MANT = VTH_MANT_MAX   # readout layer of a 'voltage'-readout net never spikes
ACT_SHIFT = 6                 # Lava: synaptic input, threshold and bias are << 6 in state units
UV_MAX = 2**23                # u and v are 24-bit (v clipped at +-(2^23 - 1), u wraps)

# netx keys every neuron group may hold, read and written by the base class
COMMON_KEYS = {"refDelay": "ref_delay", "gradedSpike": "graded_spike",
               "messageBits": "message_bits"}


@dataclass
class Discrete:
    """A neuron as NIR's discrete-time normal form (tna.nir.semantics), per neuron, for step dt:

        I[t] = (1 - a_syn) I[t-1] + g_syn x[t]
        v[t] = (1 - a_mem) v[t-1] + g_mem I[t] + bias
        z[t] = v[t] > threshold;  v[t] = v_reset where z[t]        (threshold None: no spikes)

    x, I, v and threshold in slayer units (Loihi integers / 64); a_* fractions per step."""
    a_syn: np.ndarray               # current decay per step, fraction
    g_syn: np.ndarray               # input -> current gain per step
    a_mem: np.ndarray               # voltage decay per step, fraction
    g_mem: np.ndarray               # current -> voltage gain per step
    bias: np.ndarray                # added to v every step (a_mem * v_leak)
    threshold: np.ndarray | None    # None: the neuron never spikes (CubaLI, LI)
    v_reset: np.ndarray | None

    @property
    def spiking(self) -> bool:
        return self.threshold is not None


# The emulator's step: (u, v, a6, bias, out) -> (u, v). u, v: (N, n) float64 tensors holding
# the state integers (zero at a reset); a6: synaptic input << 6, state units; bias: (n,) << 6
# or None; out: (N, n) bool tensor the spikes are written to. It may update u, v in place.
Step = Callable[[Any, Any, Any, Any, Any], tuple]


@dataclass
class Neuron:
    """Base of every neuron model; subclasses register with tna.neurons.register_neuron."""
    TYPES: ClassVar[tuple[str, ...]] = ()      # the netx `neuron/type` names it reads
    FIELDS: ClassVar[dict[str, str]] = {}      # its own netx keys -> attributes, all required
    DEFAULT_MESSAGE_BITS: ClassVar[int] = 0    # netx's default: 0 = binary spikes
    NETX_BUILDS: ClassVar[bool] = True         # False: netx cannot build it at all
    _: KW_ONLY
    type: str = ""                 # as the file names it ("" = the model's first name)
    ref_delay: int = 1             # written by lava-dl, ignored by netx
    graded_spike: bool = False
    message_bits: int | None = None    # messageBits: bits of its messages; None = DEFAULT_
    extra: dict = field(default_factory=dict)   # other scalar fields, kept as read

    def __post_init__(self):
        if not self.type:
            self.type = self.TYPES[0]

    @classmethod
    def handles(cls, kind: str) -> bool:
        return kind in cls.TYPES

    @classmethod
    def from_fields(cls, kind: str, fields: dict, where: str) -> Neuron:
        """The model from a netx group's scalar datasets (key -> value)."""
        missing = next((k for k in cls.FIELDS if k not in fields), None)
        if missing is not None:
            raise TnaError(f"{where}/neuron: missing field {missing!r}; re-export the net")
        own = {attr: int(fields[k]) for k, attr in cls.FIELDS.items()}
        common = {attr: (bool if attr == "graded_spike" else int)(fields[k])
                  for k, attr in COMMON_KEYS.items() if k in fields}
        rest = {k: v for k, v in fields.items()
                if k != "type" and k not in cls.FIELDS and k not in COMMON_KEYS}
        return cls(**own, **common, type=kind, extra=rest)

    def to_fields(self) -> dict:
        """The netx group's datasets, in the order lava-dl writes them."""
        out = {"type": self.type}
        out.update({k: int(getattr(self, a)) for k, a in self.FIELDS.items()
                    if getattr(self, a) is not None})
        out.update(refDelay=int(self.ref_delay), gradedSpike=bool(self.graded_spike))
        if self.message_bits is not None:
            out["messageBits"] = int(self.message_bits)
        out.update(self.extra)
        return out

    @property
    def out_bits(self) -> int:
        """Bits of the messages it sends (netx's get_neuron_params)."""
        return self.DEFAULT_MESSAGE_BITS if self.message_bits is None else self.message_bits

    @property
    def never_spikes(self) -> bool:
        """True when no input can make it spike (a readout read by its voltage)."""
        return False

    def errors(self, where: str) -> list[str]:
        """Why netx cannot load it (empty: it can)."""
        return []

    def warnings(self, where: str) -> list[str]:
        """What netx or Loihi would do silently to its values."""
        return []

    def stepper(self) -> Step | None:
        """The emulator's fixed-point step, or None when tna does not emulate it."""
        return None

    def slayer_params(self) -> dict | None:
        """The parameters of the lava-dl slayer CUBA neuron (slayer.neuron.cuba.Neuron) that
        runs this model in tna.reference, or None when slayer's CUBA neuron cannot."""
        return None

    def normal_form(self, shape: tuple) -> Discrete | None:
        """The neuron over `shape` neurons as NIR's normal form, or None when it has none."""
        return None
