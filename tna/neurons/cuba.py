"""Loihi's current-based leaky integrate-and-fire neuron (CUBA), as netx, Lava and slayer run it.

Fixed point, per step t, integers (wrap32 = two's-complement int32; Lava's PyLifModelBitAcc):

    rtz(x) = sign(x) * (|x| >> 12)                                    # round toward zero
    x = wrap32(rtz(u * (4096 - iDecay)) + (a[t] << 6))                # a: synaptic input
    u = x - 2^24 if x > 2^23 else (x + 2^24 if x <= -2^23 else x)     # one 24-bit wrap
    v = clip(wrap32(rtz(v * (4096 - vDecay)) + u + (int16(bias) << 6)), -(2^23-1), 2^23-1)
    s[t] = v > (vThMant << 6);  v = 0 where s[t]                      # no refractory period

Units: iDecay, vDecay in 1/4096 per step (0..4096); vThMant in 2^6 units of v; u, v in 2^12
units of slayer's float state. slayer's float form (lava.lib.dl.slayer.neuron.cuba) is the
same with current_decay = iDecay / 4096, voltage_decay = vDecay / 4096, threshold = vThMant / 64.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tna.neurons.base import (ACT_SHIFT, NON_SPIKING_VTH_MANT, P_SCALE, UV_MAX, VTH_MANT_MAX,
                              W_SCALE, Discrete, Neuron)
from tna.neurons.registry import register_neuron


@register_neuron
@dataclass
class Cuba(Neuron):
    """CUBA LIF in Loihi integers (netx types CUBA and LOIHI: netx builds LIF / LIFReset)."""
    TYPES = ("CUBA", "LOIHI")
    FIELDS = {"iDecay": "i_decay", "vDecay": "v_decay", "vThMant": "vth_mant"}
    i_decay: int                   # current decay, 1/4096 per step
    v_decay: int                   # voltage decay, 1/4096 per step
    vth_mant: int                  # threshold mantissa, 2^6 units of v

    @classmethod
    def from_slayer(cls, neuron, vth_scale: int = 1) -> Cuba:
        """The integers of a slayer CUBA neuron (its own device_params), with the threshold
        rounded rather than truncated and times `vth_scale` (the weights' ternary scale)."""
        p = neuron.device_params                 # a property
        return cls(i_decay=int(p["iDecay"]), v_decay=int(p["vDecay"]),
                   vth_mant=int(round(float(neuron.threshold) * W_SCALE * vth_scale)),
                   ref_delay=int(p["refDelay"]), graded_spike=bool(p["gradedSpike"]))

    @property
    def never_spikes(self) -> bool:
        # v is clipped at 2^23 - 1, so vThMant << 6 >= 2^23 - 63 is never exceeded
        return self.vth_mant >= NON_SPIKING_VTH_MANT

    def errors(self, where: str) -> list[str]:
        if self.i_decay is None or self.v_decay is None:
            return [f"{where}: a {self.type} neuron needs iDecay and vDecay"]
        return []

    def warnings(self, where: str) -> list[str]:
        out = []
        for name, val in (("iDecay", self.i_decay), ("vDecay", self.v_decay)):
            if not 0 <= val <= P_SCALE:
                out.append(f"{where}: neuron/{name} = {val} outside [0, {P_SCALE}]; a decay is a "
                           f"fraction in [0, 1] times {P_SCALE}, re-export with one")
        if not 0 <= self.vth_mant <= VTH_MANT_MAX:
            out.append(f"{where}: neuron/vThMant = {self.vth_mant} does not fit Loihi's 17-bit "
                       f"threshold mantissa [0, {VTH_MANT_MAX}]; re-export with a threshold in "
                       f"[0, {VTH_MANT_MAX / W_SCALE:.2f}] (vThMant = threshold * {W_SCALE})")
        return out

    def stepper(self):
        return _step(P_SCALE - int(self.i_decay), P_SCALE - int(self.v_decay),
                     int(self.vth_mant) << ACT_SHIFT)

    def slayer_params(self) -> dict:
        return {"threshold": self.vth_mant / W_SCALE, "current_decay": self.i_decay / P_SCALE,
                "voltage_decay": self.v_decay / P_SCALE}

    def normal_form(self, shape: tuple) -> Discrete:
        def full(x):
            return np.full(shape, float(x))
        return Discrete(a_syn=full(self.i_decay / P_SCALE), g_syn=full(1.0),
                        a_mem=full(self.v_decay / P_SCALE), g_mem=full(1.0), bias=full(0.0),
                        threshold=full(min(self.vth_mant, NON_SPIKING_VTH_MANT) / W_SCALE),
                        v_reset=full(0.0))


def _step(i_mul: int, v_mul: int, vth: int):
    """The fixed-point step for 4096 - iDecay, 4096 - vDecay and vThMant << 6 (module docstring).

    The state is float64 holding integers (exact below 2^53; a float multiply and an int64
    cast beat int64 division); the wrap and clip run only when a value leaves 24 bits."""
    import torch
    i_frac, v_frac = i_mul / P_SCALE, v_mul / P_SCALE

    def step(u, v, a6, bias, out):
        buf = torch.empty(u.shape, dtype=torch.int64, device=u.device) \
            if i_mul not in (0, P_SCALE) or v_mul not in (0, P_SCALE) else None
        if i_mul == 0:
            u.copy_(a6)
        else:
            if i_mul != P_SCALE:
                _rtz_(u, i_frac, buf)
            u.add_(a6)
        lo, hi = torch.aminmax(u)
        if hi > UV_MAX or lo <= -UV_MAX:
            u = fwrap32(u)
            u = torch.where(u > UV_MAX, u - 2 * UV_MAX, torch.where(u <= -UV_MAX, u + 2 * UV_MAX, u))
        if v_mul == 0:
            v.copy_(u)
        else:
            if v_mul != P_SCALE:
                _rtz_(v, v_frac, buf)
            v.add_(u)
        if bias is not None:
            v.add_(bias)
        lo, hi = torch.aminmax(v)
        if hi >= UV_MAX or lo <= -UV_MAX:
            v = fwrap32(v).clamp_(-(UV_MAX - 1), UV_MAX - 1)
        spk = torch.gt(v, vth, out=out)
        v.masked_fill_(spk, 0)
        return u, v

    return step


def _rtz_(x, frac: float, buf) -> None:
    """x = trunc(x * frac) in place; float->int64 casts truncate and beat torch.trunc on CPU."""
    x.mul_(frac)
    buf.copy_(x)
    x.copy_(buf)


def fwrap32(x):
    """Two's-complement int32 wrap of integer-valued float64."""
    import torch
    return x - 2.0**32 * torch.floor((x + 2.0**31) / 2.0**32)
