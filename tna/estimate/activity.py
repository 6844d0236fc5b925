"""Activity per inference, counted on tna's bit-exact emulator: what each layer (and each core
of its mapping) does on the chip.

Per neuron layer, summed over the samples and divided by their number:
- `events_in`: messages the layer receives (spikes of the layer before; for the first layer the
  nonzero input values, each one graded or binary message);
- `synops`: synaptic operations, one per message per synapse it drives, zero weights included
  (the compiler stores dense synapse lists with their zeros: tna.estimate.fit);
- `synops_nonzero`: the same, counting nonzero weights only (what a chip that skipped zero
  weights would do: the low end of the cost range);
- `spikes`: spikes the layer sends;
- `updates`: neuron updates, every neuron once per time step.
Per neuron too (`synops_per_neuron`, `spikes_per_neuron`), so that a core's share is the sum
over the neurons of its tile (tna.estimate.fit).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from tna import netx


@dataclass
class LayerActivity:
    index: int                          # position in model.layers
    events_in: float                    # messages in, per inference
    synops: float                       # synaptic operations, per inference, zeros included
    synops_nonzero: float               # synaptic operations on nonzero weights, per inference
    spikes: float                       # spikes out, per inference
    updates: float                      # neuron updates (neurons x T), per inference
    # per neuron, slayer layout (C, H, W) or (n,)
    synops_per_neuron: np.ndarray = field(repr=False, default=None)
    synops_nonzero_per_neuron: np.ndarray = field(repr=False, default=None)
    spikes_per_neuron: np.ndarray = field(repr=False, default=None)


@dataclass
class Activity:
    samples: int
    timesteps: int                      # T, steps per inference
    layers: dict                        # netx layer index -> LayerActivity

    def renumbered(self, offset: int) -> "Activity":
        """The same counts with every layer index moved by `offset` (a net counted after
        netx's skip_layers, numbered as its file)."""
        return Activity(self.samples, self.timesteps, {
            i + offset: dataclasses.replace(a, index=i + offset) for i, a in self.layers.items()})

    @property
    def synops(self) -> float:
        return sum(a.synops for a in self.layers.values())

    @property
    def synops_nonzero(self) -> float:
        return sum(a.synops_nonzero for a in self.layers.values())

    @property
    def spikes(self) -> float:
        return sum(a.spikes for a in self.layers.values())

    @property
    def updates(self) -> float:
        return sum(a.updates for a in self.layers.values())


def _synapses(stage) -> tuple:
    """(every synapse, nonzero synapses) as 1.0 where one is (after Lava's weight handling)."""
    import torch
    w = np.asarray(stage.weight)
    return (torch.ones(w.shape, dtype=torch.float64),
            torch.as_tensor(w != 0, dtype=torch.float64))


def _received(stage, events, synapses):
    """Synaptic ops into each neuron of `stage` from per-input event counts (B, *in_shape),
    `synapses` 1.0 where a synapse is (torch tensors)."""
    import torch
    if stage.kind == "input":                 # data enters on a_in: no synapse
        return torch.zeros((events.shape[0], *stage.shape), dtype=torch.float64)
    if stage.kind == "dense":
        return events.reshape(events.shape[0], -1) @ synapses.T
    return torch.nn.functional.conv2d(events, synapses, stride=stage.stride, padding=stage.padding,
                                      dilation=stage.dilation, groups=stage.groups)


def count(model: netx.NetxModel, inputs, input_message_bits: int = 0, loader: str = "tna",
          batch_size: int = 256) -> Activity:
    """Count what `model` does per inference on `inputs` (integers, slayer layout (N, ..., T)),
    running tna's emulator. Raises TnaError when the emulator cannot run the net (it runs CUBA
    neurons only)."""
    import torch

    from tna.sim.emulator import emulate, plan

    x_all = torch.as_tensor(np.asarray(inputs))
    n, steps = int(x_all.shape[0]), int(x_all.shape[-1])
    stages = plan(model, tuple(x_all.shape[1:-1]), input_message_bits=input_message_bits,
                  loader=loader)
    masks = {st.index: (None, None) if st.weight is None else _synapses(st) for st in stages}
    syn = {st.index: torch.zeros(st.shape, dtype=torch.float64) for st in stages}
    syn_nz = {st.index: torch.zeros(st.shape, dtype=torch.float64) for st in stages}
    spk = {st.index: torch.zeros(st.shape, dtype=torch.float64) for st in stages}
    ev_in = {st.index: 0.0 for st in stages}
    for lo in range(0, n, batch_size):
        x = x_all[lo:lo + batch_size]
        res = emulate(model, x, input_message_bits=input_message_bits, record=("spikes",),
                      record_layers="all", aligned_layers=True, loader=loader)
        events = (x != 0).to(torch.float64).sum(-1)          # (B, *in_shape): input messages
        for st in stages:
            ev_in[st.index] += float(events.sum())
            e = events.reshape(events.shape[0], *st.in_shape)
            every, nonzero = masks[st.index]
            syn[st.index] += _received(st, e, every).reshape(-1, *st.shape).sum(0)
            syn_nz[st.index] += _received(st, e, nonzero).reshape(-1, *st.shape).sum(0)
            s = res.spikes[st.index].to(torch.float64).sum(-1)   # (B, *shape)
            spk[st.index] += s.sum(0)
            events = s
    layers = {}
    for st in stages:
        neurons = int(np.prod(st.shape))
        layers[st.index] = LayerActivity(
            index=st.index, events_in=ev_in[st.index] / n, synops=float(syn[st.index].sum()) / n,
            synops_nonzero=float(syn_nz[st.index].sum()) / n,
            spikes=float(spk[st.index].sum()) / n, updates=float(neurons * steps),
            synops_per_neuron=(syn[st.index] / n).numpy(),
            synops_nonzero_per_neuron=(syn_nz[st.index] / n).numpy(),
            spikes_per_neuron=(spk[st.index] / n).numpy())
    return Activity(samples=n, timesteps=steps, layers=layers)
