"""A bit-exact, batched emulator of Lava's `Loihi2SimCfg(select_tag='fixed_pt')` for netx nets.

`emulate(model, inputs)` runs a `NetxModel` the way `lava.lib.dl.netx.hdf5.Network` + Lava's
fixed-point process models (PyDenseModelBitAcc, PyDelayDenseModelBitAcc, PyConvModelFixed,
PyLifModelBitAcc / PyLifResetModelBitAcc, lava-nc 0.10 / lava-dl 0.6) run it, for a whole batch of
samples at once, in torch (CPU, or CUDA when the inputs are on CUDA).

Timeline. Lava steps are t = 1..S; raw arrays hold step t at index t-1. Input sample step tau
(0-based, tau < T) is sent by the RingBuffer source at step tau+1; after T steps the input is zero
(the "drain"). Every synapse sends at step t what it computed from its input at step t-1, so the
k-th neuron layer (k = 1..L) sees the input of step tau at step tau+1+k (plus its axonal delay).
An input layer with a neuron (netx's Input block, fed on its a_in as Intel's tutorials do) has
no synapse: it integrates x[tau] << 6 at raw index tau, adds no step, and is layer 0 here:

    raw index of (layer k, sample step tau) = tau + k;     ALIGNED:  out[..., tau] = raw[..., tau + L]

where L is the number of neuron layers (dense and conv; input and flatten layers add no step).
With no delays, no overflow and no bias acting before the data arrives, `out_spikes` and
`out_voltage` then equal the slayer no-shift model (delay_shift=False) at step tau. A bias acts
from Lava step 1, so layer k has integrated it for k extra steps unless it is reset: with
`reset_interval=R >= T + L` and `reset_offset=1`, layer k resets exactly at raw index k, where the
data arrives, and the alignment holds with biases too. The default run length is S = T + L.

Fixed-point equations, per neuron layer and step t (integers; wrap32 = two's-complement int32):

    synapse, dense (weights W from netx's optimize_weight_bits, then Lava's clip_weights and
      truncate_weights, weight exponent e; sign modes as Lava's determine_sign_mode):
        binary input (message bits 0): a[t] = wrap32(shift_e(W . (s[t-1-d] != 0)))
        graded input (message bits > 0): a[t] = wrap32(shift_e(wrap32(W . s[t-1-d])))
        shift_e(x) = x << e if e > 0 else x >> -e (arithmetic);  d = netx `delay`, clipped to
        0..62 and truncated (DelayDense; per output neuron, per input, or per synapse)
    synapse, conv (slayer layout; equals netx's flipped (W,H,C) kernel):
        a[t] = wrap24(shift_e(conv2d(s[t-1], W, stride, padding, dilation, groups))),
        wrap24(x) = ((x + 2^23) mod 2^24) - 2^23;   netx ignores `delay` on conv layers.
        Unmodified netx: W as in the file, e = 0 (8-bit weights). tna's loader: W and e as for
        dense (optimize_weight_bits, clip, truncate; tna.lava.procs' conv model)
    neuron: if resetting at t (t mod R == (reset_offset + k) mod R): state = 0; then the
        neuron model's fixed-point step (tna.neurons: its `stepper`) on a[t] << 6 and the bias
        int16(bias) << 6 (netx's bias_exp = 6); for CUBA (tna.neurons.cuba):
        rtz(x) = sign(x) * (|x| >> 12)                                       # round toward zero
        x = wrap32(rtz(u * (4096 - iDecay)) + (a[t] << 6))
        u = x - 2^24 if x > 2^23 else (x + 2^24 if x <= -2^23 else x)        # one 24-bit wrap
        v = clip(wrap32(rtz(v * (4096 - vDecay)) + u + (int16(bias) << 6)), -(2^23-1), 2^23-1)
        s[t] = v > (vThMant << 6);  v = 0 where s[t]                         # no refractory

Implementation. The net runs layer by layer over all steps (feed-forward, so each synapse is one
batched conv2d/matmul over every (sample, step) frame that holds a spike), then the neuron
recurrence runs step by step on whole tensors. Synaptic sums use float32 when every partial sum
stays below 2^24 (exact), else float64 (below 2^53); CUDA runs with cuDNN and TF32 off. Neuron
state is float64 holding integers (exact; float multiply and an int64 cast beat int64 division);
the wrap and clip branches only run on steps where a value leaves the 24-bit range.
`record_layers=()` asks for the aligned output only: then layer k runs just raw steps k..k+T-1,
the T steps the aligned output depends on, when that is exact (no delays, and no bias or
reset_offset = 1 modulo reset_interval), which makes it as cheap as a slayer forward pass.

A dense layer without a neuron group gets netx's default (tna.netx.NETX_DEFAULT_NEURON: iDecay 0,
vDecay 4096, vThMant 2^17, a non-leaky integrator that never spikes); a 1-D dense weight is
reshaped to (prod(shape), -1) as netx does, and a dense `shape` of any length means prod(shape)
neurons.

Not supported (TnaError, one line naming the layer and pointing to --backend lava-sim): input
layers with a neuron (netx leaves their input unconnected), dense_rec layers, neuron models
without a fixed-point step (SDNN sigma-delta, RF), layer types netx cannot load; also dense layers whose
weights are all zero (netx's optimize_weight_bits fails on them). Where Lava's
own result is platform-defined (a conv sum beyond +-2^31, cast from float64 to int32) the emulator
wraps modulo 2^24; with weights in [-256, 255] that needs a fan-in above 2^23 / |input|.
"""
from __future__ import annotations

import dataclasses
import itertools
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from tna import neurons
from tna.errors import TnaError
from tna.netx import (MAX_DELAY, NETX_LOADABLE, Layer, NetxModel, conv_output_shape,
                      dense_matrix, neuron_of, optimizes_weights, synapse_weights)
from tna.neurons import ACT_SHIFT, UV_MAX   # synaptic input, bias, threshold: << 6; 24-bit u, v

BIAS_EXP = 6                   # netx sets bias_exp = 6 for its neurons
F32_EXACT = 2**24              # float32 holds every integer below this exactly
F64_EXACT = 2**53
RECORDABLE = ("spikes", "u", "v")


# --------------------------------------------------------------------------- results

@dataclass
class Recording:
    """Per-layer spikes, u and v of a run: what `emulate` records, and what the Lava harness
    (tna.lava.harness.record_lava) records of a real Lava run, in the same form.

    Raw arrays are on Lava's timeline: index i holds Lava step i+1, for `steps` steps, in slayer
    layout (N, *layer_shape, steps), keyed by the layer's index in `model.layers`. Spikes are bool,
    u and v int32. `out_spikes` / `out_voltage` are the last layer's spikes / voltage aligned to the
    slayer no-shift timeline, (N, *out_shape, T), raw index tau + `offset` (None when the run is
    shorter than T + offset steps).
    """
    spikes: dict = field(default_factory=dict)
    u: dict = field(default_factory=dict)
    v: dict = field(default_factory=dict)
    steps: int = 0
    timesteps: int = 0             # T, input steps per sample
    offset: int = 0                # raw index of aligned step 0 = number of neuron layers
    out_layer: int = -1            # index in model.layers of the output layer
    out_spikes: torch.Tensor | None = None
    out_voltage: torch.Tensor | None = None
    starts: dict = field(default_factory=dict)   # layer index -> raw index of its aligned step 0

    def aligned(self, layer: int, name: str = "spikes") -> torch.Tensor:
        """A recorded layer's variable on the aligned timeline, (N, *shape, T)."""
        k = self.starts[layer]
        return getattr(self, name)[layer][..., k:k + self.timesteps]

    def layers(self) -> list[int]:
        return sorted(set(self.spikes) | set(self.u) | set(self.v))


@dataclass
class Difference:
    """The first place where two results differ."""
    layer: int
    variable: str
    step: int                      # raw index (Lava step - 1)
    sample: int
    neuron: tuple                  # index within the layer, slayer layout
    a: int
    b: int

    def __str__(self) -> str:
        return (f"layer/{self.layer} {self.variable} differs first at Lava step {self.step + 1} "
                f"(raw index {self.step}), sample {self.sample}, neuron {self.neuron}: "
                f"{self.a} != {self.b}")


def first_difference(a: Recording, b: Recording,
                     variables=RECORDABLE) -> Difference | None:
    """The earliest step (then lowest layer, then u, v, spikes) where `a` and `b` differ.

    Compares every layer and variable both results recorded; None when they agree everywhere.
    A layer or variable only one of them holds is reported as a difference at step 0.
    """
    order = [name for name in ("u", "v", "spikes") if name in variables]
    best = None
    for name in order:
        da, db = getattr(a, name), getattr(b, name)
        for layer in sorted(set(da) | set(db)):
            if layer not in da or layer not in db:
                cand = Difference(layer, name, 0, 0, (), 0, 0)
            else:
                x, y = da[layer].cpu(), db[layer].cpu()
                if x.shape != y.shape:
                    cand = Difference(layer, f"{name} shape {tuple(x.shape)} vs {tuple(y.shape)}",
                                      0, 0, (), 0, 0)
                else:
                    diff = (x.to(torch.int64) != y.to(torch.int64))
                    if not bool(diff.any()):
                        continue
                    steps = diff.reshape(-1, diff.shape[-1]).any(0).nonzero()
                    step = int(steps[0])
                    idx = diff[..., step].nonzero()[0].tolist()
                    cand = Difference(layer, name, step, idx[0], tuple(idx[1:]),
                                      int(x[..., step][tuple(idx)]), int(y[..., step][tuple(idx)]))
            key = (cand.step, cand.layer, order.index(name))
            if best is None or key < best[0]:
                best = (key, cand)
    return None if best is None else best[1]


# --------------------------------------------------------------------------- netx weights

def netx_delays(delay, weight_shape: tuple) -> np.ndarray:
    """netx's synaptic delay matrix (out, in) for a dense layer's `delay` field."""
    d = np.asarray(delay)
    if d.max() > MAX_DELAY:
        d = np.clip(d, 0, MAX_DELAY)
    out, inp = weight_shape
    if d.ndim == 0:
        d = d * np.ones(weight_shape)
    elif d.ndim == 1:
        if d.size == out:                     # axonal: one delay per output neuron
            d = np.repeat(d.reshape(-1, 1), inp, axis=1)
        elif d.size == inp:
            d = np.repeat(d.reshape(1, -1), out, axis=0)
        else:
            raise ValueError(f"delay of shape {d.shape} fits neither {out} outputs nor {inp} inputs")
    if d.shape != tuple(weight_shape):
        raise ValueError(f"delay of shape {d.shape} does not match weight {weight_shape}")
    if d.min() < 0:
        raise ValueError("negative delay")
    return d.astype(int)


# --------------------------------------------------------------------------- plan

@dataclass
class _Stage:
    """One neuron layer, ready to run."""
    index: int                     # position in model.layers
    kind: str                      # 'dense' | 'conv' | 'input' (an input neuron: x goes to a_in)
    in_shape: tuple                # slayer layout, without batch
    shape: tuple
    weight: np.ndarray             # int64: dense (out, in) after Lava's weight handling; conv as is
    weight_exp: int = 0
    delays: np.ndarray | None = None   # dense (out, in) delays, None when all zero
    graded: bool = False           # input arrives as graded values (message bits > 0)
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    dilation: tuple = (1, 1)
    groups: int = 1
    step: Callable | None = None   # the neuron model's fixed-point step (tna.neurons.base.Step)
    bias: np.ndarray | None = None     # int64, already int16-wrapped and << 6, per neuron
    reset_offset: int = 0          # netx's per-layer reset offset
    lag: int = 1                   # Lava steps from input to neurons: 1 per synapse, 0 for a_in


def _where(i: int, layer: Layer) -> str:
    return f"layer/{i} ({layer.type})"


def _wrap(x, bits: int):
    half = 1 << (bits - 1)
    return ((x + half) % (1 << bits)) - half


def _neuron_params(stage: _Stage, layer: Layer, where: str) -> None:
    n = neuron_of(layer)                  # netx's default integrator for a dense layer without one
    if n is None:
        raise TnaError(f"{where}: no neuron group; netx needs one on every conv layer")
    stage.step = n.stepper()
    if stage.step is None:
        raise TnaError(_not_emulated(n, where))
    if layer.bias is not None:
        b = np.asarray(layer.bias).astype(int).astype(np.int32)
        n_out = int(np.prod(stage.shape))
        if stage.kind == "dense":
            if b.size not in (1, n_out):
                raise TnaError(f"{where}: bias has {b.size} values for {n_out} neurons")
            b = np.broadcast_to(b.reshape(-1), (n_out,))
        else:
            c = stage.shape[0]
            if b.reshape(-1).size != c:
                raise TnaError(f"{where}: conv bias must hold one value per channel ({c}), "
                               f"found shape {b.shape}")
            b = np.broadcast_to(b.reshape(-1, 1, 1), stage.shape)
        # Lava stores bias_mant as int16, then shifts it by bias_exp in int32.
        stage.bias = (b.astype(np.int16).astype(np.int64) << BIAS_EXP).reshape(-1)


def _dense_stage(i, layer, in_shape, flat_ok, graded) -> _Stage:
    where = _where(i, layer)
    if layer.weight is None:
        raise TnaError(f"{where}: no weight")
    out = int(np.prod(layer.shape))
    try:
        w = dense_matrix(layer)                    # 1-D weights: netx's reshape to (out, -1)
    except ValueError as e:
        raise TnaError(f"{where}: {e}") from None
    n_in = int(np.prod(in_shape))
    if len(in_shape) != 1 and not flat_ok:
        raise TnaError(f"{where}: dense layer after a {in_shape} layer needs a flatten layer "
                       f"before it (netx connects the shapes as they are)")
    if w.shape != (out, n_in):
        raise TnaError(f"{where}: weight shape {w.shape} does not fit {n_in} inputs and "
                       f"{out} outputs")
    try:
        weight, weight_exp = synapse_weights(w)
        delays = None if layer.delay is None else netx_delays(layer.delay, w.shape)
    except ValueError as e:
        raise TnaError(f"{where}: {e}") from None
    if delays is not None and not delays.any():
        delays = None
    stage = _Stage(index=i, kind="dense", in_shape=(n_in,), shape=(out,), weight=weight,
                   weight_exp=weight_exp, delays=delays, graded=graded)
    _neuron_params(stage, layer, where)
    return stage


def _conv_stage(i, layer, in_shape, graded, loader) -> _Stage:
    where = _where(i, layer)
    if layer.weight is None or np.asarray(layer.weight).ndim != 4:
        raise TnaError(f"{where}: conv weight must be 4-D (out, in/groups, kh, kw)")
    if len(in_shape) != 3:
        raise TnaError(f"{where}: conv needs a (C, H, W) input, the previous layer gives "
                       f"{in_shape}")
    w = np.asarray(layer.weight).astype(int).astype(np.int32).astype(np.int64)
    weight_exp = 0
    if optimizes_weights("conv", loader) and np.any(w):
        w, weight_exp = synapse_weights(w)         # tna's loader: weight bits as for dense
    groups = int(layer.groups or 1)
    stride, padding, dilation = (tuple(int(x) for x in p) for p in
                                 (layer.stride, layer.padding, layer.dilation))
    c = in_shape[0]
    if c != w.shape[1] * groups or w.shape[0] % groups:
        raise TnaError(f"{where}: weight {w.shape} with groups={groups} does not fit {c} input "
                       f"channels")
    shape = conv_output_shape(layer, in_shape)
    if tuple(layer.shape) != shape:
        raise TnaError(f"{where}: shape {tuple(layer.shape)} does not match {shape} computed "
                       f"from input {in_shape}")
    stage = _Stage(index=i, kind="conv", in_shape=tuple(in_shape), shape=shape, weight=w,
                   weight_exp=weight_exp, graded=graded, stride=stride, padding=padding,
                   dilation=dilation, groups=groups)
    _neuron_params(stage, layer, where)
    return stage


def _unsupported_type(where: str, layer_type: str) -> str:
    if layer_type in NETX_LOADABLE:
        return (f"{where}: the emulator runs input, flatten, dense and conv layers, not "
                f"'{layer_type}'; run this net on Lava (tna run --backend lava-sim)")
    return f"{where}: '{layer_type}' layers are not supported (netx cannot load them either)"


def unsupported(model: NetxModel) -> str | None:
    """Why the emulator cannot run `model` (one line naming the layer), None when it can."""
    for i, layer in enumerate(model.layers):
        where = _where(i, layer)
        if layer.type not in _PLANNERS:
            return _unsupported_type(where, layer.type)
        n = neuron_of(layer)
        if n is not None and n.stepper() is None:
            return _not_emulated(n, where)
    return None


def _not_emulated(n, where: str) -> str:
    return neurons.refusal(n, where, "the emulator", "stepper",
                           "run this net on Lava (tna run --backend lava-sim)")


@dataclass
class _Planning:
    """What plan() carries from layer to layer."""
    shape: tuple | None            # incoming shape, slayer layout (None: not known yet)
    graded: bool                   # the incoming messages are graded (input message bits > 0)
    loader: str
    flatten_next: bool = False     # a flatten layer came just before (netx flattens W, H, C)


def _plan_input(i: int, layer: Layer, p: _Planning) -> _Stage | None:
    p.shape = tuple(int(x) for x in layer.shape)     # netx takes the input shape from here
    if layer.neuron is None:
        return None
    if i:
        raise TnaError(f"{_where(i, layer)}: an input layer with a neuron after other layers")
    # An input neuron (netx's Input block) takes the data on a_in in the step it is sent, with
    # no synapse and no bias (netx's create_input passes none).
    stage = _Stage(index=i, kind="input", in_shape=p.shape, shape=p.shape, weight=None, lag=0)
    _neuron_params(stage, dataclasses.replace(layer, bias=None), _where(i, layer))
    return stage


def _plan_flatten(i: int, layer: Layer, p: _Planning) -> _Stage | None:
    p.flatten_next = True
    return None


def _plan_dense(i: int, layer: Layer, p: _Planning) -> _Stage:
    stage = _dense_stage(i, layer, p.shape, p.flatten_next, p.graded)
    p.flatten_next = False
    return stage


def _plan_conv(i: int, layer: Layer, p: _Planning) -> _Stage:
    return _conv_stage(i, layer, p.shape, p.graded, p.loader)


# Layer type -> planner: (index, layer, _Planning) -> a neuron stage, or None for layers that
# only shape what the next one gets. Types missing here are refused (_unsupported_type).
_PLANNERS = {"input": _plan_input, "flatten": _plan_flatten, "dense": _plan_dense,
             "conv": _plan_conv}


def plan(model: NetxModel, input_shape: tuple | None = None, *, input_message_bits: int = 0,
         reset_offset: int = 0, loader: str = "tna") -> list[_Stage]:
    """Compile `model` into neuron-layer stages the way netx.hdf5.Network builds its blocks.

    `input_shape` (slayer layout) is used when the model has no input layer. `loader` ('tna' or
    'netx', see tna.netx.LOADERS) decides the conv layers' weight bits and exponent.
    """
    stages: list[_Stage] = []
    state = _Planning(shape=tuple(input_shape) if input_shape is not None else None,
                      graded=input_message_bits > 0, loader=loader)
    offset = reset_offset + 1          # netx: "time starts from 1 in hardware"
    for i, layer in enumerate(model.layers):
        where = _where(i, layer)
        planner = _PLANNERS.get(layer.type)
        if planner is None:
            raise TnaError(_unsupported_type(where, layer.type))
        if state.shape is None and layer.type not in ("input", "flatten"):
            raise TnaError(f"{where}: the input shape is unknown; add an input layer or pass "
                           f"input_shape")
        stage = planner(i, layer, state)
        if stage is None:
            continue
        stage.reset_offset = offset
        offset += 1
        state.graded = False           # LIF output is binary (num_message_bits = 0)
        state.shape = stage.shape
        stages.append(stage)
    if not stages:
        raise TnaError("the model has no dense or conv layer to run")
    return stages


# --------------------------------------------------------------------------- running

@contextmanager
def _exact_math(device: torch.device):
    """Keep float convolutions and matmuls exact for integer operands (no TF32, no Winograd)."""
    if device.type == "cuda":
        with torch.backends.cudnn.flags(enabled=False, allow_tf32=False):
            old = torch.backends.cuda.matmul.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = False
            try:
                yield
            finally:
                torch.backends.cuda.matmul.allow_tf32 = old
    else:
        yield


def _float_dtype(weight: torch.Tensor, max_in: int, where: str) -> torch.dtype:
    """The float type in which every partial sum of the synapse is an exact integer."""
    fan = weight.abs().reshape(weight.shape[0], -1).sum(1).max().item() if weight.numel() else 0
    bound = fan * max_in
    if bound < F32_EXACT:
        return torch.float32
    if bound < F64_EXACT:
        return torch.float64
    raise TnaError(f"{where}: synaptic sums can reach {bound:.3g}, beyond exact float64; "
                   f"use smaller inputs")


class _Runner:
    """One stage with its tensors on a device.

    Neuron state is kept in float64 (every value is an integer below 2^33, so exact) because
    float multiply/trunc is much faster than int64 division on CPU; rtz(u * m) = trunc(u * m/4096)
    with m/4096 a dyadic fraction, exact in float64.
    """

    def __init__(self, stage: _Stage, device: torch.device, max_in: int):
        self.s = stage
        self.device = device
        if stage.weight is None:                  # input neuron: a = x, integers below 2^53
            self.dtype, self.w = torch.float64, None
        else:
            w = torch.as_tensor(stage.weight, device=device)
            self.dtype = _float_dtype(w, max_in, f"layer/{stage.index}")
            self.w = w.to(self.dtype)
        self.n = int(np.prod(stage.shape))
        self.bias = None if stage.bias is None else torch.as_tensor(
            stage.bias, dtype=torch.float64, device=device)
        self.delay_rows = None         # per output neuron delays, when each row has one value
        self.delay_masks = None        # [(k, weight with only delay-k synapses)] otherwise
        if stage.delays is not None:
            d = stage.delays
            if (d == d[:, :1]).all():
                self.delay_rows = torch.as_tensor(d[:, 0], device=device)
            else:
                self.delay_masks = [(int(k), torch.as_tensor(np.where(d == k, stage.weight, 0),
                                                             device=device).to(self.dtype))
                                    for k in np.unique(d)]

    def _linear(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Exact float W . x for frames x (M, *in_shape) -> (M, n), integer-valued."""
        s = self.s
        if s.kind == "input":
            return x.reshape(x.shape[0], -1).to(self.dtype)
        if s.kind == "dense":
            y = x.reshape(x.shape[0], -1).to(self.dtype) @ w.T
        else:
            y = torch.nn.functional.conv2d(x.to(self.dtype), w, stride=s.stride,
                                           padding=s.padding, dilation=s.dilation,
                                           groups=s.groups)
        return y.reshape(y.shape[0], -1)

    def _activation(self, y: torch.Tensor) -> torch.Tensor:
        """Lava's integer handling of a synaptic sum -> a << 6 as the LIF adds it (wrap32)."""
        s = self.s
        if s.kind == "conv" and y.dtype == torch.float32 and s.weight_exp <= 0:
            # |y| < 2^24 here, so the shift (floor of a power-of-two scaling), the 24-bit wrap
            # and the << 6 stay exact in float32.
            if s.weight_exp < 0:
                y = torch.floor(y * 2.0**s.weight_exp)
            lo, hi = torch.aminmax(y)
            if hi >= UV_MAX or lo < -UV_MAX:
                y = torch.where(y >= UV_MAX, y - 2 * UV_MAX, torch.where(y < -UV_MAX, y + 2 * UV_MAX, y))
            return y * (1 << ACT_SHIFT)
        z = y.round().to(torch.int64)
        e = s.weight_exp
        if s.kind == "input":                     # LIF: a_in << 6 in int32
            return _wrap(z << ACT_SHIFT, 32)
        if s.kind == "conv":
            z = _wrap(z << e if e > 0 else z >> -e, 24)
        else:
            if s.graded and s.delays is None:
                z = _wrap(z, 32)       # Dense: int32 weights.dot(int32 s_in) wraps
            z = _wrap(z << e if e > 0 else z >> -e, 32)
        return _wrap(z << ACT_SHIFT, 32)

    def synapse(self, frames: torch.Tensor, f0: int, j0: int, count: int) -> torch.Tensor:
        """Input a << 6 (count, N, n) for raw steps j0..j0+count-1, float32 or float64.

        frames (F, N, *in_shape) hold the previous layer's output at raw steps f0..f0+F-1 (zero
        elsewhere); the input at step p reaches the neurons at step p + lag + delay (lag 1
        through a synapse, 0 into an input neuron's a_in).
        """
        batch, lag = frames.shape[1], self.s.lag
        # Only frames that reach a step in range matter.
        p_lo = max(f0, j0 - lag - MAX_DELAY if self.s.delays is not None else j0 - lag)
        p_hi = min(f0 + frames.shape[0], j0 + count - lag)
        if p_hi <= p_lo:
            return torch.zeros((count, batch, self.n), dtype=torch.float32, device=self.device)
        used = p_hi - p_lo
        x = frames[p_lo - f0:p_hi - f0].reshape(used * batch, *frames.shape[2:])
        if self.s.kind == "input":
            x = _wrap(x.to(torch.int64), 32)      # a_in takes the values as sent (int32)
        elif not self.s.graded:
            x = x != 0
        elif x.dtype != torch.int64 or bool((x.abs() >= 2**31).any()):
            x = _wrap(x.to(torch.int64), 32)      # the RingBuffer holds int32
        idx = x.reshape(x.shape[0], -1).any(1).nonzero().squeeze(1)
        dense_frames = idx.numel() == x.shape[0]
        xs = x if dense_frames else x[idx]

        def spread(act):                          # (alive, n) -> (used, N, n)
            if dense_frames:
                return act.reshape(used, batch, -1)
            full = torch.zeros((used * batch, self.n), dtype=act.dtype, device=self.device)
            if idx.numel():
                full[idx] = act
            return full.reshape(used, batch, -1)

        if self.delay_masks is None:
            act = spread(self._activation(self._linear(xs, self.w)) if idx.numel()
                         else torch.zeros((0, self.n), dtype=torch.float32, device=self.device))
            if self.delay_rows is None:
                a = torch.zeros((count, batch, self.n), dtype=act.dtype, device=self.device)
                a[p_lo + lag - j0:p_hi + lag - j0] = act
                return a
            # Axonal delays: neuron i gets the input of step j - 1 - d_i.
            j = torch.arange(j0, j0 + count, device=self.device).view(-1, 1)
            src = j - 1 - self.delay_rows.view(1, -1) - p_lo
            ok = (src >= 0) & (src < used)
            gathered = act.permute(0, 2, 1)[src.clamp(0, used - 1),
                                            torch.arange(self.n, device=self.device)]
            return torch.where(ok.unsqueeze(-1), gathered, 0).permute(0, 2, 1).contiguous()
        # Per-synapse delays: DelayDense sums each delay's share, shifts it, adds into int32.
        a = torch.zeros((count, batch, self.n), dtype=torch.int64, device=self.device)
        for k, w in self.delay_masks:
            if not idx.numel():
                break
            y = self._linear(xs, w).round().to(torch.int64)
            e = self.s.weight_exp
            z = spread(y << e if e > 0 else y >> -e)
            lo, hi = max(p_lo + 1 + k, j0), min(p_hi + 1 + k, j0 + count)
            if hi > lo:
                a[lo - j0:hi - j0] += z[lo - 1 - k - p_lo:hi - 1 - k - p_lo]
        return _wrap(_wrap(a, 32) << ACT_SHIFT, 32).to(torch.float64)

    def neurons(self, a6: torch.Tensor, j0: int, reset_interval: int | None,
                want_u: bool, want_v: bool):
        """Neuron dynamics for raw steps j0.. (zero state before j0).

        a6: (count, N, n) synaptic input already << 6. Returns spikes (count, N, n) bool and
        u, v (int32) or None.
        """
        s = self.s
        count, batch = a6.shape[0], a6.shape[1]
        u = torch.zeros((batch, self.n), dtype=torch.float64, device=self.device)
        v = torch.zeros_like(u)
        spikes = torch.empty((count, batch, self.n), dtype=torch.bool, device=self.device)
        us = torch.empty((count, batch, self.n), dtype=torch.int32, device=self.device) if want_u else None
        vs = torch.empty((count, batch, self.n), dtype=torch.int32, device=self.device) if want_v else None
        for c in range(count):
            j = j0 + c
            if reset_interval is not None and (j + 1) % reset_interval == s.reset_offset % reset_interval:
                u.zero_()
                v.zero_()
            u, v = s.step(u, v, a6[c], self.bias, spikes[c])
            if us is not None:
                us[c] = u
            if vs is not None:
                vs[c] = v
        return spikes, us, vs


def _to_slayer(x: torch.Tensor, shape: tuple) -> torch.Tensor:
    """(S, N, n) -> (N, *shape, S)."""
    steps, batch = x.shape[0], x.shape[1]
    return x.reshape(steps, batch, *shape).movedim(0, -1).contiguous()


def _windowed(stages: list[_Stage], reset_interval, reset_offset) -> bool:
    """Whether layer k can start from zero state at raw step k (where its data arrives).

    True without delays when no layer has a bias (every layer is idle before its data) or when
    each layer resets exactly at raw step k (reset_offset = 1 modulo the interval; 0 with an
    input neuron, whose data arrives at raw step 0: tna.netx.data_reset_offset).
    """
    if any(st.delays is not None for st in stages):
        return False
    clean = stages[0].lag                     # 1, or 0 with an input neuron
    if reset_interval is not None and reset_offset % reset_interval == clean % reset_interval:
        return True
    return all(st.bias is None for st in stages)


def emulate(model: NetxModel, inputs, *, input_message_bits: int = 0,
            record=("spikes",), record_layers="all", reset_interval: int | None = None,
            reset_offset: int = 0, steps: int | None = None,
            batch_size: int = 1024, loader: str = "tna",
            aligned_layers: bool = False) -> Recording:
    """Run `model` on a batch of inputs exactly as netx + Lava's fixed-point simulator would.

    inputs: integers in slayer layout (N, C, H, W, T) or (N, F, T) (numpy or torch; CUDA tensors
      run on CUDA). A dense first layer takes the input flattened in (C, H, W) order.
    input_message_bits: as `netx.hdf5.Network(input_message_bits=...)`; 0 = binary spikes (any
      nonzero input is a spike), > 0 = graded values.
    record: which raw per-layer variables to keep: any of 'spikes', 'u', 'v'.
    record_layers: 'all', 'last', a list of indices into `model.layers`, or () for the aligned
      output only; with () each layer runs only the T steps the aligned output depends on (as
      fast as slayer) whenever that is exact (no delays; no bias, or reset_offset=1 resets).
    reset_interval, reset_offset: as `netx.hdf5.Network(...)`; layer k (1-based among neuron
      layers) resets u and v when Lava step t satisfies t % R == (reset_offset + k) % R.
    steps: Lava steps to run (default T + L, L = neuron layers); input is zero after T.
    batch_size: samples run at once (bounds memory).
    aligned_layers: record each layer's T aligned steps only (its raw steps from
      `starts[layer]`; then `starts` are all 0), as cheap as record_layers=() where exact.
    loader: whose netx loader Lava runs the file with: 'tna' (conv weights through netx's
      optimize_weight_bits, as dense) or 'netx' (unmodified netx: conv at 8 bits, exponent 0).
    Returns a `Recording` (raw Lava timeline plus aligned output, see the module docstring).
    """
    x = _check_inputs(inputs, record, reset_interval)
    stages = plan(model, tuple(x.shape[1:-1]), input_message_bits=input_message_bits,
                  reset_offset=reset_offset, loader=loader)
    run = _RunPlan.make(stages, x, steps, record, record_layers, reset_interval, reset_offset,
                        aligned_layers)
    if input_message_bits > 0 or stages[0].kind == "input":   # an input neuron takes values
        max_in = int(x.abs().max().item()) if x.numel() else 1
        x = x.to(torch.int64)
    else:
        max_in, x = 1, x != 0          # binary input: any nonzero value is a spike
    max_in = min(max(max_in, 1), 2**31)
    runners = [_Runner(st, x.device, max_in if k == 0 else 1) for k, st in enumerate(stages)]
    parts: dict = {name: {i: [] for i in run.keep} for name in RECORDABLE if name in record}
    out_s, out_v = [], []
    with torch.no_grad(), _exact_math(x.device):
        for lo in range(0, x.shape[0], batch_size):
            s, v = _run_batch(runners, run, x[lo:lo + batch_size], parts)
            out_s.append(s)
            out_v.append(v)
    result = Recording(steps=run.steps, timesteps=run.timesteps, offset=run.lag,
                            out_layer=stages[-1].index,
                            starts={st.index: 0 if aligned_layers else k
                                    for st, k in zip(stages, run.starts)})
    for name, per_layer in parts.items():
        setattr(result, name, {i: torch.cat(v) for i, v in per_layer.items()})
    if run.aligned:
        result.out_spikes = torch.cat(out_s)
        result.out_voltage = torch.cat(out_v)
    return result


def _check_inputs(inputs, record, reset_interval) -> torch.Tensor:
    """The inputs as a tensor, and the arguments that need no model, checked."""
    bad = set(record) - set(RECORDABLE)
    if bad:
        raise TnaError(f"record: unknown variables {sorted(bad)}; choose from {RECORDABLE}")
    x = inputs if isinstance(inputs, torch.Tensor) else torch.as_tensor(np.asarray(inputs))
    if x.dim() < 3:
        raise TnaError(f"inputs: expected (N, C, H, W, T) or (N, F, T), got shape {tuple(x.shape)}")
    if x.dtype.is_floating_point and not bool((x == x.round()).all()):
        raise TnaError("inputs: values must be integers (graded levels or 0/1 spikes)")
    if reset_interval is not None and reset_interval < 1:
        raise TnaError(f"reset_interval must be a positive number of steps, got {reset_interval}")
    return x


@dataclass
class _RunPlan:
    """Which steps each stage runs and what is kept (see `emulate`)."""
    starts: list           # per stage: raw index of its aligned step 0
    lag: int               # pipeline steps: synapses (an input neuron adds none)
    timesteps: int         # T
    steps: int             # raw steps on the full timeline
    keep: set              # layer indices whose raw variables are recorded
    record: tuple
    reset_interval: int | None
    aligned: bool          # the run covers every aligned step of the output
    aligned_layers: bool   # record each layer's aligned T steps only
    window: bool           # each stage runs its T aligned steps only (exact here)

    @classmethod
    def make(cls, stages, x, steps, record, record_layers, reset_interval, reset_offset,
             aligned_layers) -> "_RunPlan":
        first = stages[0]
        if int(np.prod(x.shape[1:-1])) != int(np.prod(first.in_shape)) or (
                first.kind == "conv" and tuple(x.shape[1:-1]) != first.in_shape):
            raise TnaError(f"inputs: sample shape {tuple(x.shape[1:-1])} does not fit "
                           f"layer/{first.index} input {first.in_shape}")
        starts = list(itertools.accumulate(st.lag for st in stages))
        timesteps, lag = x.shape[-1], starts[-1]
        steps = timesteps + lag if steps is None else int(steps)
        if steps < 1:
            raise TnaError(f"steps must be positive, got {steps}")
        keep = _kept_layers(stages, record_layers)
        aligned = steps >= timesteps + lag
        if aligned_layers and not aligned:
            raise TnaError(f"aligned_layers needs steps >= T + {lag}, got {steps}")
        window = (not keep or aligned_layers) and aligned and \
            _windowed(stages, reset_interval, reset_offset)
        return cls(starts, lag, timesteps, steps, keep, tuple(record), reset_interval, aligned,
                   aligned_layers, window)


def _kept_layers(stages, record_layers) -> set:
    if isinstance(record_layers, str) and record_layers == "all":
        return {st.index for st in stages}
    if isinstance(record_layers, str) and record_layers == "last":
        return {stages[-1].index}
    keep = {int(i) for i in record_layers}
    unknown = keep - {st.index for st in stages}
    if unknown:
        raise TnaError(f"record_layers: {sorted(unknown)} are not dense/conv layers of the model")
    return keep


def _run_batch(runners, run: _RunPlan, x, parts) -> tuple:
    """One batch through every stage; records into `parts`; the aligned output (spikes, v)."""
    frames, f0 = x.movedim(-1, 0), 0                       # input step tau at raw index tau
    out = (None, None)
    for k, r in enumerate(runners):
        j0, count = (run.starts[k], run.timesteps) if run.window else (0, run.steps)
        a6 = r.synapse(frames, f0, j0, count)
        is_last = k == len(runners) - 1
        want = r.s.index in run.keep
        spikes, us, vs = r.neurons(a6, j0, run.reset_interval, want and "u" in run.record,
                                   (want and "v" in run.record) or is_last)
        del a6
        if want:
            part = slice(run.starts[k] - j0, run.starts[k] - j0 + run.timesteps) \
                if run.aligned_layers else slice(None)
            for name, val in (("spikes", spikes), ("u", us), ("v", vs)):
                if name in parts:
                    parts[name][r.s.index].append(_to_slayer(val[part], r.s.shape))
        if is_last and run.aligned:
            sl = slice(run.lag - j0, run.lag - j0 + run.timesteps)
            out = (_to_slayer(spikes[sl], r.s.shape), _to_slayer(vs[sl], r.s.shape))
        frames, f0 = spikes.reshape(count, spikes.shape[1], *r.s.shape), j0
    return out
