"""NIR's continuous-time neurons as the discrete-time equations tna runs them with.

For a step dt, every NIR neuron is read as forward Euler with the current updated first, the
order Lava's CUBA neuron, slayer, snnTorch's Synaptic and NIR's own lava-dl converter use
(NIR's numpy test neurons use the previous step's current instead):

    I[t] = (1 - a_syn) I[t-1] + g_syn x[t]        a_syn = dt / tau_syn,  g_syn = a_syn * w_in
    v[t] = (1 - a_mem) v[t-1] + g_mem I[t] + b    a_mem = dt / tau_mem,  g_mem = a_mem * r,
                                                  b = a_mem * v_leak
    z[t] = v[t] > v_threshold;  v[t] = v_reset where z[t]

    CubaLIF  as written                      CubaLI  no threshold: the output is v
    LIF      a_syn = 1, g_syn = 1 (I = x)    LI      LIF without a threshold
    IF       a_syn = 1, g_syn = 1, a_mem = 0, g_mem = dt * r, b = 0

Loihi's CUBA neuron is the same with I in units where g_mem = 1, b = 0 and v_reset = 0:
u[t] = (1 - iDecay/4096) u[t-1] + W s[t];  v[t] = (1 - vDecay/4096) v[t-1] + u[t].
"""
from __future__ import annotations

import numpy as np

from tna.errors import TnaError
from tna.neurons import Discrete   # the normal form; each neuron model gives its own

NEURONS = ("CubaLIF", "CubaLI", "LIF", "LI", "IF")


def _param(node, name, shape, where) -> np.ndarray:
    value = getattr(node, name, None)
    if value is None:
        raise TnaError(f"{where}: {type(node).__name__} has no {name}")
    a = np.asarray(value, dtype=np.float64)
    try:
        a = np.broadcast_to(a, shape).copy()
    except ValueError:
        raise TnaError(f"{where}: {name} has shape {a.shape}, but the synapse before it "
                       f"gives {tuple(shape)} neurons") from None
    if not np.all(np.isfinite(a)):
        raise TnaError(f"{where}: {name} holds NaN or Inf; NIR time constants, gains and "
                       f"thresholds must be finite")
    return a


def _rate(node, name, dt, shape, where) -> np.ndarray:
    tau = _param(node, name, shape, where)
    if np.any(tau <= 0):
        raise TnaError(f"{where}: {name} must be > 0 (seconds), found {tau.min():g}")
    return dt / tau


def discrete(node, dt: float, shape: tuple, where: str) -> Discrete:
    """The discrete-time parameters of neuron `node` for step `dt`, over neurons of `shape`."""
    kind = type(node).__name__
    one, zero = np.ones(shape), np.zeros(shape)
    if kind in ("CubaLIF", "CubaLI"):
        a_syn = _rate(node, "tau_syn", dt, shape, where)
        a_mem = _rate(node, "tau_mem", dt, shape, where)
        g_syn = a_syn * _param(node, "w_in", shape, where)
    elif kind in ("LIF", "LI"):
        a_syn, g_syn = one, one
        a_mem = _rate(node, "tau", dt, shape, where)
    elif kind == "IF":
        a_syn, g_syn, a_mem = one, one, zero
    else:
        raise TnaError(f"{where}: {kind} is not a neuron tna reads ({', '.join(NEURONS)})")
    g_mem = (dt if kind == "IF" else a_mem) * _param(node, "r", shape, where)
    bias = zero if kind == "IF" else a_mem * _param(node, "v_leak", shape, where)
    spiking = kind in ("CubaLIF", "LIF", "IF")
    threshold = _param(node, "v_threshold", shape, where) if spiking else None
    v_reset = None
    if spiking:
        v_reset = zero if getattr(node, "v_reset", None) is None else \
            _param(node, "v_reset", shape, where)
    return Discrete(a_syn, g_syn, a_mem, g_mem, bias, threshold, v_reset)
