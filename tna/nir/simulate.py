"""A NIR graph's own float semantics: the chain run in float64, per `tna.nir.semantics`.

This is what an imported net is compared with: no quantisation, no 24-bit state, no rounding
of decays; inputs are the same numbers Lava gets, on the same aligned timeline (step t of the
output is computed from input steps 0..t, no pipeline delay).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tna.nir.read import SYNAPSES, chain, input_shape, parse_synapse
from tna.nir.semantics import NEURONS, discrete


@dataclass
class FloatOutput:
    spikes: np.ndarray           # (N, out, T) output-layer spikes, 0/1 (all 0 for CubaLI/LI)
    voltage: np.ndarray          # (N, out, T) output-layer v after reset, NIR voltage units
    layer_counts: list           # per neuron layer: (N,) spikes per sample over T steps


def _synapse_op(syn):
    """x (N, *in) -> (N, *out) as the float64 torch op of a parsed synapse."""
    import torch
    import torch.nn.functional as F
    w = torch.tensor(syn.weight, dtype=torch.float64)
    b = None if syn.bias is None else torch.tensor(syn.bias, dtype=torch.float64)
    if syn.kind == "dense":
        return lambda x: x @ w.T + (0 if b is None else b)
    c = syn.conv
    return lambda x: F.conv2d(x, w, bias=b, stride=c["stride"], padding=c["padding"],
                              dilation=c["dilation"], groups=c["groups"])


class _Neuron:
    def __init__(self, d, batch):
        import torch
        t = lambda a: torch.tensor(a, dtype=torch.float64)[None]   # noqa: E731
        self.a_syn, self.g_syn, self.a_mem, self.g_mem, self.bias = (
            t(d.a_syn), t(d.g_syn), t(d.a_mem), t(d.g_mem), t(d.bias))
        self.threshold = None if d.threshold is None else t(d.threshold)
        self.v_reset = None if d.v_reset is None else t(d.v_reset)
        self.i = torch.zeros((batch,) + d.a_syn.shape, dtype=torch.float64)
        self.v = torch.zeros_like(self.i)

    def step(self, x):
        import torch
        self.i = (1 - self.a_syn) * self.i + self.g_syn * x
        self.v = (1 - self.a_mem) * self.v + self.g_mem * self.i + self.bias
        if self.threshold is None:
            return self.v, None
        z = self.v > self.threshold
        self.v = torch.where(z, self.v_reset.expand_as(self.v), self.v)
        return z.to(torch.float64), z


def _plan(graph, dt):
    """[(op kind, op)] for the chain: 'reshape' to a shape, 'synapse' fn, 'neuron' Discrete."""
    nodes = chain(graph)
    shape = input_shape(nodes[0][1], "Input")
    ops = []
    for name, node in nodes[1:-1]:
        kind = type(node).__name__
        if kind == "Flatten":
            shape = (int(np.prod(shape)),)
            ops.append(("reshape", shape))
        elif kind in SYNAPSES:
            syn = parse_synapse(node, shape, name)
            ops.append(("synapse", _synapse_op(syn)))
            shape = syn.out_shape
        elif kind in NEURONS:
            ops.append(("neuron", discrete(node, dt, shape, name)))
    return input_shape(nodes[0][1], "Input"), ops


def simulate(graph, inputs, dt: float, batch_size: int = 500) -> FloatOutput:
    """Run the chain of `graph` on inputs (N, *input shape, T) in float64."""
    in_shape, ops = _plan(graph, dt)
    inputs = np.asarray(inputs)
    outs = [_run(ops, in_shape, inputs[i:i + batch_size])
            for i in range(0, len(inputs), batch_size)]
    return FloatOutput(spikes=np.concatenate([o.spikes for o in outs]),
                       voltage=np.concatenate([o.voltage for o in outs]),
                       layer_counts=[np.concatenate([o.layer_counts[j] for o in outs])
                                     for j in range(len(outs[0].layer_counts))])


def _run(ops, in_shape, x_all) -> FloatOutput:
    import torch
    n, steps = len(x_all), x_all.shape[-1]
    x_all = torch.tensor(x_all.reshape(n, -1, steps), dtype=torch.float64)
    neurons = [_Neuron(op, n) for kind, op in ops if kind == "neuron"]
    counts = [torch.zeros(n, dtype=torch.float64) for _ in neurons]
    spikes, voltage = [], []
    for t in range(steps):
        x, k = x_all[..., t].reshape((n,) + tuple(in_shape)), 0
        for kind, op in ops:
            if kind == "reshape":
                x = x.reshape((n,) + tuple(op))
            elif kind == "synapse":
                x = op(x)
            else:
                x, z = neurons[k].step(x)
                if z is not None:
                    counts[k] += z.flatten(1).sum(1)
                k += 1
        last = neurons[-1]
        voltage.append(last.v.reshape(n, -1).clone())
        spikes.append(torch.zeros_like(voltage[-1]) if last.threshold is None
                      else x.reshape(n, -1))
    return FloatOutput(spikes=torch.stack(spikes, -1).numpy(),
                       voltage=torch.stack(voltage, -1).numpy(),
                       layer_counts=[c.numpy() for c in counts])
