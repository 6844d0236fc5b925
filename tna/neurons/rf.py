"""Resonate-and-fire neurons (any netx type naming RF): read and written, refused by validate.

netx 0.6 builds them but cannot connect them: its dense and conv blocks feed a_in, which RF
neurons lack (they take complex input, from dense_comp layers that netx 0.6 cannot load).
Their sinDecay / cosDecay and other fields are kept in `extra` as read."""
from __future__ import annotations

from dataclasses import dataclass

from tna.neurons.base import Neuron
from tna.neurons.registry import register_neuron


@register_neuron
@dataclass
class Rf(Neuron):
    TYPES = ("RF",)
    FIELDS = {"vThMant": "vth_mant"}
    vth_mant: int

    @classmethod
    def handles(cls, kind: str) -> bool:
        return "RF" in kind            # netx's get_neuron_params: any type naming RF

    def errors(self, where: str) -> list[str]:
        return [f"{where}: netx 0.6 builds {self.type} neurons but cannot connect them: its "
                f"dense and conv blocks feed a_in, which RF neurons lack (they take complex "
                f"input, from dense_comp layers that netx 0.6 cannot load)"]
