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

from tna.models.spec import ModelSpec
from tna.netx import NON_SPIKING_VTH_MANT, W_SCALE

NON_SPIKING_THRESHOLD = NON_SPIKING_VTH_MANT / W_SCALE   # slayer units


def _slayer():
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
    """slayer's 8-bit weight hook (step 2/64, range [-256, 254]/64), straight-through gradient."""
    return _slayer().utils.quantize_hook_fx(w, descale=descale)


class SNN(torch.nn.Module):
    """A CUBA SNN. Input: (N, C, H, W, T) or (N, F, T); output: logits (N, classes)."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        slayer = _slayer()
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from tna.models import dynamics
        impl = dynamics.select(x.device)    # only the speed depends on it (see dynamics)
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
            return dynamics.voltage(out.neuron, out.synapse(x), impl).sum(-1)
        return dynamics.spikes(out.neuron, out.synapse(x), impl).sum(-1)

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


def _constant_in_time(x: torch.Tensor) -> bool:
    return x.shape[-1] > 1 and torch.equal(x[..., :1].expand_as(x), x)


def build_model(spec: ModelSpec, seed: int | None = None) -> SNN:
    """A freshly initialised SNN; `seed` makes the initialisation reproducible."""
    if seed is None:
        return SNN(spec)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return SNN(spec)
