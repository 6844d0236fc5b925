"""emulator: tna's bit-exact batched emulator of Lava fixed_pt (tna.sim)."""
from __future__ import annotations

import time

import numpy as np

from tna.deploy.backends.base import BackendOutput, Job, logits, register_backend
from tna.netx import BLOCK_TYPES, MAX_DELAY, NetxModel, data_reset_offset

CHUNK = 1000          # samples per emulate call: bounds the memory of every layer's spikes


@register_backend("emulator")
class Emulator:
    forks = False
    partner = 1                       # the partner where the reference cannot represent a net

    def run(self, job: Job) -> BackendOutput:
        import torch

        from tna.sim.emulator import emulate
        from tna.spikes import pack
        t0 = time.time()
        # Each layer starts from zero state where a sample's data reaches it, as on Lava (one
        # window per sample): without the reset a bias would act on layer k for k steps
        # before its data arrives.
        kw = dict(input_message_bits=job.input_message_bits, record=("spikes",),
                  record_layers="all", aligned_layers=True, loader=job.loader,
                  reset_interval=lava_window(job.model, job.inputs.shape[-1]),
                  reset_offset=data_reset_offset(job.model))
        from tqdm import tqdm

        from tna.console import progress_enabled
        spikes, voltage, layers = [], [], {}
        chunks = range(0, len(job.inputs), CHUNK)
        for lo in tqdm(chunks, desc="emulator", unit="chunk", leave=False,
                       disable=not progress_enabled(job.progress) or len(chunks) < 2):
            res = emulate(job.model, job.inputs[lo:lo + CHUNK], **kw)
            spikes.append(res.out_spikes.to(torch.int64).flatten(1, -2).numpy())
            voltage.append(res.out_voltage.to(torch.int64).flatten(1, -2).numpy())
            for i, s in res.spikes.items():
                layers.setdefault(i, []).append(pack(s))
        spikes, voltage = np.concatenate(spikes), np.concatenate(voltage)
        return BackendOutput(self.name, spikes=spikes, voltage=voltage,
                             logits=logits(spikes, voltage, job.readout),
                             seconds=time.time() - t0,
                             layer_spikes={i: np.concatenate(p) for i, p in layers.items()})

    def unsupported(self, model: NetxModel) -> str | None:
        from tna.sim.emulator import unsupported
        return unsupported(model)


def lava_window(model: NetxModel, timesteps: int) -> int:
    """Lava steps per sample in tna's Lava runner: T, then one drain step per layer and per
    step of axonal delay (tna.lava.runner)."""
    layers = [layer for layer in model.layers if layer.type in BLOCK_TYPES]
    delay = sum(min(int(np.max(layer.delay)), MAX_DELAY) for layer in layers
                if layer.delay is not None and np.size(layer.delay) and layer.type != "conv")
    return timesteps + len(layers) + max(delay, 0)
