"""The PyTorch reference: an exported netx model evaluated with lava-dl slayer.

The net is rebuilt from the file's integers alone (weights w_int / 64, threshold vThMant / 64,
decays iDecay / 4096, vDecay / 4096, no quantisation hook since the values are already exact),
with `delay_shift=False`, and fed the same integer inputs Lava gets. Its outputs are on the
"aligned" timeline: step t of the output is what the net computes from input steps 0..t with no
pipeline delay. Lava adds one step of delay per layer; the backends undo that before comparing.

Each layer runs slayer's own synapse and slayer's leaky-integrator dynamics (current, then
voltage), with two things slayer's CUBA neuron does not do by itself:

* the threshold is compared exactly. slayer spikes where v >= threshold + 0.01/4096, and
  compares its integer state with that float in float32: from vThMant 4096 on (v's 2^18 and
  up) the 0.01 is rounded away and slayer spikes at v == vThMant << 6, where Lava does not
  (Lava: v > vThMant << 6). Here the threshold handed to the dynamics is (vThMant * 64 + 0.5)
  state units, exact in float32 for every 17-bit mantissa, and spikes are read in integers.
* netx's `bias` is added to the voltage input every step (slayer's "bias can be enabled by
  adding it here"), bias / 64 in slayer units, as Lava adds bias << 6 to v; the bias is
  wrapped to int16 first, as Lava stores it.

Voltages are returned in Lava's integer units (slayer float * 4096).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tna.errors import TnaError
from tna import neurons
from tna.netx import NetxModel, STATE_SCALE, W_SCALE, dense_matrix, neuron_of


@dataclass
class ReferenceOutput:
    spikes: torch.Tensor           # (N, out, T) output-layer spikes, 0/1
    voltage: torch.Tensor          # (N, out, T) output-layer voltage, Lava integer units
    layer_counts: list             # per neuron layer: (N,) spikes per sample over all neurons and steps
    logits: torch.Tensor           # (N, out): readout over the T steps
    layer_spikes: dict | None = None   # netx layer index -> its spikes, packed (tna.spikes)


def _conv(slayer, layer):
    block = slayer.block.cuba.Conv(
        neuron_of(layer).slayer_params(), layer.weight.shape[1] * layer.groups, layer.weight.shape[0],
        tuple(layer.weight.shape[2:]), stride=layer.stride, padding=layer.padding,
        dilation=layer.dilation, groups=layer.groups, pre_hook_fx=None, delay_shift=False)
    w = torch.tensor(np.asarray(layer.weight, dtype=np.float64) / W_SCALE, dtype=torch.float32)
    block.synapse.weight.data = w.reshape(block.synapse.weight.shape)
    return block


def _dense(slayer, layer):
    weight = dense_matrix(layer)           # netx's (out, in), also for 1-D weights
    out_n, in_n = weight.shape
    block = slayer.block.cuba.Dense(neuron_of(layer).slayer_params(), in_n, out_n,
                                    pre_hook_fx=None, delay_shift=False)
    w = torch.tensor(np.asarray(weight, dtype=np.float64) / W_SCALE, dtype=torch.float32)
    block.synapse.weight.data = w.reshape(block.synapse.weight.shape)
    return block


def _flatten(slayer, layer):
    return slayer.block.cuba.Flatten()


class _InputNeuron(torch.nn.Module):
    """An input layer with a neuron: the data goes straight into its current (netx's Input
    block fed on a_in, as Intel's tutorials do): x integers -> x / 64 slayer units, no bias."""

    def __init__(self, slayer, layer):
        super().__init__()
        self.neuron = slayer.neuron.cuba.Neuron(**layer.neuron.slayer_params(),
                                                requires_grad=False)

    def synapse(self, x: torch.Tensor) -> torch.Tensor:
        return x / W_SCALE


def _input(slayer, layer):
    return _InputNeuron(slayer, layer)


_BUILDERS = {"conv": _conv, "dense": _dense, "flatten": _flatten, "input": _input}


def unsupported(model: NetxModel) -> str | None:
    """Why the slayer reference cannot represent `model` (None when it can): slayer's CUBA
    blocks have no axonal delay in netx's sense and no other neuron types."""
    for i, layer in enumerate(model.layers):
        if layer.type == "input" and (layer.neuron is None or i == 0):
            if layer.neuron is not None and not _referenced(layer.neuron):
                return neurons.refusal(layer.neuron, f"layer/{i}", "the reference",
                                       "slayer_params")
            continue
        if layer.type not in _BUILDERS:
            return f"layer/{i}: the reference cannot run '{layer.type}' layers"
        if layer.delay is not None:
            return (f"layer/{i}: axonal delays are not supported by the slayer reference; "
                    f"compare emulator and lava-sim instead")
        if layer.bias is not None and np.asarray(layer.bias).size not in (
                1, layer.shape[0] if layer.type == "conv" else int(np.prod(layer.shape))):
            return (f"layer/{i}: bias of {np.asarray(layer.bias).size} values fits neither "
                    f"the layer's neurons nor its channels")
        n = neuron_of(layer)
        if n is not None and not _referenced(n):
            return neurons.refusal(n, f"layer/{i}", "the reference", "slayer_params")
    return None


def _referenced(n: neurons.Neuron) -> bool:
    """Whether the reference runs `n`: its model gives slayer CUBA parameters."""
    return n.slayer_params() is not None


class ReferenceNet(torch.nn.Module):
    """slayer blocks rebuilt from a `NetxModel`; forward gives a `ReferenceOutput`."""

    def __init__(self, model: NetxModel, readout: str = "voltage"):
        super().__init__()
        from tna.models.snn import import_slayer
        slayer = import_slayer()

        why = unsupported(model)
        if why is not None:
            raise TnaError(why)
        kept = [(i, layer) for i, layer in enumerate(model.layers)   # shape-only input: none
                if layer.type != "input" or layer.neuron is not None]
        self.indices = [i for i, _ in kept]                   # netx layer index of each block
        layers = [layer for _, layer in kept]
        self.blocks = torch.nn.ModuleList(_BUILDERS[layer.type](slayer, layer)
                                          for layer in layers)
        self.vth = [None if neuron_of(layer) is None else int(neuron_of(layer).vth_mant) << 6
                    for layer in layers]                  # Lava's threshold, state units
        self.bias = [None if layer.type == "input" else _bias(layer) for layer in layers]
        self.readout = readout
        self.eval()

    def forward(self, x: torch.Tensor) -> ReferenceOutput:
        # oneDNN may pick Winograd-style conv algorithms that round; the plain path is exact for
        # these integer-valued sums (and faster at this size).
        with torch.no_grad(), torch.backends.mkldnn.flags(enabled=False):
            return self._forward(x.float())

    def activity(self, x: torch.Tensor) -> tuple[list, list]:
        """(spikes, synaptic ops) per neuron layer, summed over the batch: an input event
        drives every synapse it is connected to (the weight set to 1 counts them)."""
        spikes, synops = [], []
        x = x.float()
        with torch.no_grad(), torch.backends.mkldnn.flags(enabled=False):
            for block, vth, bias in zip(self.blocks, self.vth, self.bias):
                if vth is None:               # flatten
                    x = block(x)
                    continue
                syn = getattr(block, "synapse", None)
                if isinstance(syn, torch.nn.Module):
                    w = syn.weight.data
                    syn.weight.data = torch.ones_like(w)
                    synops.append(float(syn((x != 0).float()).sum()))
                    syn.weight.data = w
                else:                         # an input neuron: no synapse
                    synops.append(0.0)
                x, _ = _cuba(block, block.synapse(x), vth, bias)
                spikes.append(float(x.sum()))
        return spikes, synops

    def _forward(self, x: torch.Tensor) -> ReferenceOutput:
        from tna.spikes import pack
        counts, packed = [], {}
        for index, block, vth, bias in zip(self.indices, self.blocks, self.vth, self.bias):
            if vth is None:               # flatten
                x = block(x)
                continue
            spikes, voltage = _cuba(block, block.synapse(x), vth, bias)
            counts.append(spikes.flatten(1).double().sum(1))
            packed[index] = pack(spikes)
            x = spikes
        # Lava's v is read after the step, when a neuron that spiked has been reset to 0;
        # slayer returns v before the reset.
        v_int = torch.round(voltage.double() * STATE_SCALE).masked_fill(spikes != 0, 0.0)
        # A conv output layer is (N, C, H, W, T): flatten it in (C, H, W) order to (N, out, T),
        # as the emulator and Lava give it, so that the logits are (N, out).
        spikes, v_int = spikes.flatten(1, -2), v_int.flatten(1, -2)
        logits = v_int.sum(-1) if self.readout == "voltage" else spikes.sum(-1)
        return ReferenceOutput(spikes=spikes, voltage=v_int, layer_counts=counts,
                               logits=logits, layer_spikes=packed)


def _bias(layer) -> torch.Tensor | None:
    """netx bias in slayer's voltage units (Lava: int16 mantissa << 6), shaped to broadcast
    over (N, *shape, T); None without one."""
    if layer.bias is None:
        return None
    b = np.asarray(layer.bias).astype(int).astype(np.int16).astype(np.float64) / W_SCALE
    shape = ((-1, 1, 1) if layer.type == "conv" else (-1,)) if b.size > 1 else ()
    return torch.tensor(b.reshape(shape + (1,)) if shape else b.reshape(()), dtype=torch.float32)


def _cuba(block, z: torch.Tensor, vth: int, bias) -> tuple:
    """slayer's CUBA dynamics of `block` on synaptic input z, with Lava's exact threshold
    comparison and bias (see the module docstring): (spikes 0/1, voltage before reset)."""
    from tna.models.snn import import_slayer
    slayer = import_slayer()
    li, quantize = slayer.neuron.dynamics.leaky_integrator, slayer.utils.quantize
    n = block.neuron
    zero = torch.zeros(1)
    current = li.dynamics(z, quantize(n.current_decay), zero, n.s_scale)
    if bias is not None:
        current = current + bias
    # threshold (vth + 0.5) / s_scale: li.dynamics multiplies it by s_scale (exactly) and
    # spikes where the integer state >= vth + 0.5, i.e. > vth, the comparison Lava makes.
    voltage = li.dynamics(current, quantize(n.voltage_decay), zero, n.s_scale,
                          (vth + 0.5) / n.s_scale)
    spikes = (torch.round(voltage.double() * n.s_scale) > vth).to(voltage.dtype)
    return spikes, voltage


def run_reference(model: NetxModel, inputs, readout: str | None = None,
                  batch_size: int = 500, progress: bool = False) -> ReferenceOutput:
    """Evaluate `model` on integer `inputs` (N, ..., T) in batches; outputs concatenated."""
    import sys

    from tqdm import tqdm

    from tna.console import progress_enabled
    readout = readout or (model.meta.readout if model.meta else "spike")
    net = ReferenceNet(model, readout)
    inputs = torch.as_tensor(np.asarray(inputs), dtype=torch.float32)
    starts = range(0, len(inputs), batch_size)
    outs = [net(inputs[i:i + batch_size]) for i in tqdm(
        starts, desc="reference", unit="batch", leave=False, file=sys.stderr,
        disable=not progress_enabled(progress) or len(starts) < 2)]
    return ReferenceOutput(
        spikes=torch.cat([o.spikes for o in outs]),
        voltage=torch.cat([o.voltage for o in outs]),
        layer_counts=[torch.cat([o.layer_counts[k] for o in outs])
                      for k in range(len(outs[0].layer_counts))],
        logits=torch.cat([o.logits for o in outs]),
        layer_spikes={i: np.concatenate([o.layer_spikes[i] for o in outs])
                      for i in outs[0].layer_spikes})
