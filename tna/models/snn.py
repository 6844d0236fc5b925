"""The SNN: lava-dl SLAYER CUBA blocks built from a `ModelSpec`.

Every synapse quantises its weights through slayer's 8-bit hook (even integers / 64 in
[-4, 3.97]), so what is trained is what Loihi runs. Blocks use `delay_shift=False`: all T steps
carry information through the net during training; Loihi's one-step-per-layer pipeline delay is
accounted for at deployment (the exported net is run with drain steps).

Readout (the logits):
  'voltage'  sum over t of the output layer's membrane voltage v[t]; the output layer never
             spikes (its threshold is the largest 17-bit mantissa), so v is a plain CUBA
             integrator and reads the same on Lava (the paper's readout).
  'spike'    the output layer's spike count over t.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from tna.models.spec import ModelSpec
from tna.netx import NON_SPIKING_VTH_MANT, W_SCALE

NON_SPIKING_THRESHOLD = NON_SPIKING_VTH_MANT / W_SCALE   # slayer units


def import_slayer():
    """lava-dl slayer, imported lazily (it pulls torchvision and opencv) and quietly: its import
    prints a Prophesee warning on stdout and a CUDA note on stderr, which would pollute our
    output (e.g. `NET=$(tna export ...)`) and our one-line errors."""
    import sys
    if "lava.lib.dl.slayer" not in sys.modules:
        import contextlib
        import io
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            import lava.lib.dl.slayer  # noqa: F401
    return sys.modules["lava.lib.dl.slayer"]


def quantize_8bit(w: torch.Tensor, descale: bool = False) -> torch.Tensor:
    """slayer's 8-bit weight hook (step 2/64, range [-256, 254]/64), straight-through gradient.

    num_bits=7: slayer's default (8) clamps to [-512, 510]/64, which Loihi's 8-bit weights (even
    integers in [-256, 254]) cannot hold; a weight that drifted past ±4 in a long run made the
    net unexportable. With 7 the clamp is exactly the range the exporter accepts."""
    return import_slayer().utils.quantize_hook_fx(w, num_bits=7, descale=descale)


class SNN(torch.nn.Module):
    """A CUBA SNN. Input: (N, C, H, W, T) or (N, F, T); output: logits (N, classes)."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        slayer = import_slayer()
        self.spec = spec
        blocks = []
        n_layers = len(spec.layers)
        for i, layer in enumerate(spec.layers):
            last = i == n_layers - 1
            params = {
                "threshold": (NON_SPIKING_THRESHOLD if last and spec.readout == "voltage"
                              else spec.threshold),
                "current_decay": spec.current_decay,
                "voltage_decay": spec.voltage_decay,
                "tau_grad": spec.tau_grad,
                "scale_grad": spec.scale_grad,
                "requires_grad": spec.learn_decays,     # per-layer decays as parameters
            }
            common = dict(weight_scale=spec.weight_scale, pre_hook_fx=quantize_8bit,
                          delay_shift=False)
            if layer.kind == "conv":
                blocks.append(slayer.block.cuba.Conv(
                    params, layer.in_shape[0], layer.out, layer.kernel,
                    stride=layer.stride, padding=layer.padding, **common))
            elif layer.kind == "pool":
                # Average pool: fixed weights 1/k² (requires_grad=False in slayer).
                blocks.append(slayer.block.cuba.Pool(
                    params, layer.kernel, stride=layer.stride,
                    weight_scale=1.0 / layer.kernel ** 2, pre_hook_fx=quantize_8bit,
                    delay_shift=False))
            elif layer.kind == "flatten":
                blocks.append(slayer.block.cuba.Flatten())
            else:
                if spec.dropout > 0 and not last:
                    params["dropout"] = slayer.neuron.Dropout(p=spec.dropout)
                if last:
                    # The readout integrates over all T steps: a smaller init keeps the first
                    # logits in a range where cross-entropy is not saturated.
                    common["weight_scale"] = spec.weight_scale * spec.readout_init
                blocks.append(slayer.block.cuba.Dense(params, layer.in_shape[0], layer.out,
                                                      **common))
        self.blocks = torch.nn.ModuleList(blocks)

    @property
    def synapse_blocks(self) -> list:
        """Blocks with weights, in order (conv, pool, dense)."""
        return [b for b in self.blocks if getattr(b, "synapse", None) is not None]

    def forward(self, x: torch.Tensor, steps: bool = False) -> torch.Tensor:
        """The logits (N, classes); with `steps`, the readout per step (N, classes, T), whose
        sum over T is the logits (methods that distil between time steps read it)."""
        from tna.models import dynamics
        impl = dynamics.select(x.device, learned=self.spec.learn_decays)   # speed only
        if impl == "fused" and self.training and self._time_major_ok():
            return self._forward_time_major(x, steps)
        x = self._prepare(x)
        for i, block in enumerate(self.blocks[:-1]):
            if getattr(block, "neuron", None) is None:
                x = block(x)                # flatten
            elif i == 0 and impl != "slayer" and _constant_in_time(x):
                # Direct encoding feeds the same image every step: the first synapse (a conv
                # over the full image) is computed once, not T times.
                z = block.synapse(x[..., :1])
                x = dynamics.spikes(block.neuron, z.expand(*z.shape[:-1], x.shape[-1]), impl)
            else:
                x = dynamics.spikes(block.neuron, block.synapse(x), impl)
        out = self.blocks[-1]
        if self.spec.readout == "voltage":
            y = dynamics.voltage(out.neuron, out.synapse(x), impl)
        else:
            y = dynamics.spikes(out.neuron, out.synapse(x), impl)
        return y if steps else y.sum(-1)

    def _time_major_ok(self) -> bool:
        """Whether `_forward_time_major` covers this net: convs and dense layers (past the
        first block) that are slayer's own, without bias or weight norm, dense ones on flat
        input; no pools."""
        slayer = import_slayer()
        if len(self.blocks) < 2:
            return False
        for layer, block in zip(self.spec.layers[1:], list(self.blocks)[1:]):
            if layer.kind == "flatten":
                continue
            syn = block.synapse
            if layer.kind not in ("conv", "dense") or syn.bias is not None or \
                    syn._forward_pre_hooks or (layer.kind == "dense" and len(layer.in_shape) != 1) \
                    or type(syn) not in (slayer.synapse.Conv, slayer.synapse.Dense):
                return False
        return True

    def _forward_time_major(self, x: torch.Tensor, steps: bool = False) -> torch.Tensor:
        """The training forward on CPU (fused dynamics): activations kept time-major, (N, T, H,
        W, C) or (N, T, F), so that each conv is one 2-D conv over N*T channels-last images and
        each dense layer one matrix product, with no layout copies between layers (with the
        vectorised kernel, 1.5-2x faster than slayer's layout on 2 cores; docs/speed.md).

        Same values as `forward`: the first synapse (graded input) is slayer's own; every later
        one sums spikes (0, 1, or 1.25 after dropout 0.2) times 8-bit weights (steps of 1/32),
        which is exact in float32 in any order, so the logits equal slayer's bit for bit and
        gradients up to float rounding (tests/models/test_dynamics.py). A dropout whose 1/(1-p)
        is not a short binary fraction makes the sums, too, equal up to rounding. Dropout draws
        slayer's masks."""
        from tna.models import dynamics
        x = self._prepare(x)
        T = x.shape[-1]
        first = self.blocks[0]
        z = first.synapse(x[..., :1] if _constant_in_time(x) else x)
        z = z.movedim(1, -1).movedim(-2, 1)            # (N, C.., t) -> (N, t, ..C)
        z = z.expand(z.shape[0], T, *z.shape[2:])       # direct input: computed once
        a = _neuron_time_major(first.neuron, z)
        flat_from = None                                # (C, H, W) of a flattened map
        for block in self.blocks[1:]:
            if getattr(block, "neuron", None) is None:  # flatten: (N, T, H, W, C) -> (N, T, HWC)
                flat_from = (a.shape[-1], *a.shape[2:-1])
                a = a.flatten(2)
                continue
            z = _synapse_time_major(block, a, flat_from)
            flat_from = None
            if block is self.blocks[-1]:
                s, v = dynamics.fused_time_major(block.neuron, z)
                y = v if self.spec.readout == "voltage" else s      # (N, T, classes)
                return y.movedim(1, -1) if steps else y.sum(1)
            a = _neuron_time_major(block.neuron, z)
        raise AssertionError("the last block has a neuron")

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if self.spec.input_scale != 1.0:
            x = x * self.spec.input_scale   # data integers -> [0, 1]
        if self.spec.layers[0].kind == "dense" and x.dim() == 5:
            x = x.flatten(1, 3)             # (N, C, H, W, T) -> (N, C*H*W, T), slayer's order
        return x

    @torch.no_grad()
    def layer_activity(self, x: torch.Tensor) -> list[float]:
        """Mean spike probability per neuron and step, for each spiking layer."""
        x = self._prepare(x)
        rates = []
        for block in self.blocks[:-1]:
            x = block(x)
            if getattr(block, "neuron", None) is not None:
                rates.append(float((x > 0).float().mean()))
        return rates


def _neuron_time_major(neuron, z: torch.Tensor) -> torch.Tensor:
    """Spikes of `neuron` for time-major input, with slayer's dropout: one mask per sample and
    neuron, drawn exactly as slayer draws it (same shape, same order of random numbers)."""
    from tna.models import dynamics
    s, _ = dynamics.fused_time_major(neuron, z)
    if neuron.drop is None or not neuron.drop.training:
        return s
    feat = z.shape[2:]                                   # (H, W, C) or (F,)
    ones = s.new_ones(z.shape[0], feat[-1], *feat[:-1], 1)   # slayer's (N, C, H, W, 1)
    mask = neuron.drop(ones).squeeze(-1).movedim(1, -1)      # -> (N, H, W, C)
    return s * mask.unsqueeze(1)


def _synapse_time_major(block, a: torch.Tensor, flat_from=None) -> torch.Tensor:
    """The block's conv or dense synapse on time-major spikes `a`; `flat_from` = (C, H, W) when
    `a` is a flattened (H, W, C) map (the dense weight's columns are in slayer's C, H, W order)."""
    from tna.quant import effective_weight
    synapse, w = block.synapse, effective_weight(block)
    if a.dim() == 3:                                     # dense: (N, T, F) -> (N, T, O)
        w = w.flatten(1)
        if flat_from is not None:
            w = w.unflatten(1, flat_from).permute(0, 2, 3, 1).flatten(1)
        return F.linear(a, w)
    n, t = a.shape[:2]                                   # (N*T, C, H, W), channels-last view
    y = F.conv2d(a.flatten(0, 1).permute(0, 3, 1, 2), w[..., 0], None, synapse.stride[:2],
                 synapse.padding[:2], synapse.dilation[:2], synapse.groups)
    return y.permute(0, 2, 3, 1).unflatten(0, (n, t))


def _constant_in_time(x: torch.Tensor) -> bool:
    return x.shape[-1] > 1 and torch.equal(x[..., :1].expand_as(x), x)


def build_model(spec: ModelSpec, seed: int | None = None) -> SNN:
    """A freshly initialised SNN; `seed` makes the initialisation reproducible."""
    if seed is None:
        return SNN(spec)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return SNN(spec)
