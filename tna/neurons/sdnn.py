"""Sigma-delta neurons (netx type SDNN): read, written and validated; run on Lava only.

netx builds them as lava's SigmaDelta with the ReLU activation: a neuron sends the change of
its activation when that change exceeds vThMant << 6, as a graded message of `messageBits`
bits (16 when the file gives none). tna neither emulates nor trains them."""
from __future__ import annotations

from dataclasses import dataclass

from tna.neurons.base import Neuron
from tna.neurons.registry import register_neuron


@register_neuron
@dataclass
class Sdnn(Neuron):
    TYPES = ("SDNN",)
    FIELDS = {"vThMant": "vth_mant"}
    DEFAULT_MESSAGE_BITS = 16
    vth_mant: int                  # change threshold, 2^6 units of the activation
