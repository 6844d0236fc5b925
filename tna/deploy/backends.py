"""One adapter per backend, all returning `BackendOutput` on the aligned timeline.

  reference  the netx file evaluated with lava-dl slayer (tna.reference)
  emulator   tna's bit-exact batched emulator of Lava fixed_pt (tna.sim)
  lava-sim   the real Lava simulator, Loihi2SimCfg(select_tag='fixed_pt') (tna.lava.backend)
  loihi2     Loihi 2 through lava-loihi (same runner, Loihi2HwCfg)
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from tna.errors import TnaError
from tna.netx import NetxModel


@dataclass
class BackendOutput:
    name: str
    spikes: np.ndarray                 # (N, out, T) output-layer spikes, aligned
    voltage: np.ndarray | None         # (N, out, T) output-layer v, Lava integers; None if unread
    logits: np.ndarray                 # (N, out) readout
    seconds: float
    layer_counts: list | None = None   # per neuron layer: (n,) spikes per sample over T steps
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    """What every backend is given."""
    net_path: str
    model: NetxModel
    inputs: np.ndarray                 # integers, slayer layout, (N, ..., T)
    readout: str                       # 'voltage' | 'spike'
    input_message_bits: int
    layer_samples: int
    progress: bool
    lava_models: str = "fast"
    loader: str = "tna"                # netx loader Lava uses: tna (2-bit ternary convs) | netx
    skip_layers: int = 0               # Lava loads the file with netx's skip_layers; `model` is
                                       # already what that leaves (tna.netx.skip_layers)


def _logits(spikes, voltage, readout):
    if readout == "voltage":
        if voltage is None:
            raise TnaError("readout 'voltage' but the backend returned no voltage")
        return voltage.astype(np.int64).sum(-1)
    return spikes.astype(np.int64).sum(-1)


def reference_backend(job: Job) -> BackendOutput:
    from tna.models.snn import _slayer
    _slayer()          # a slow first import: not part of the timing

    from tna.reference import run_reference as ref
    t0 = time.time()
    out = ref(job.model, job.inputs, readout=job.readout)
    k = job.layer_samples
    return BackendOutput(
        "reference", spikes=out.spikes.numpy().astype(np.int64),
        voltage=out.voltage.numpy().astype(np.int64), logits=out.logits.numpy(),
        seconds=time.time() - t0, layer_counts=[c[:k].numpy() for c in out.layer_counts])


def emulator_backend(job: Job) -> BackendOutput:
    import torch

    from tna.sim.emulator import emulate
    t0 = time.time()
    # Each layer starts from zero state where the sample's data reaches it, as on Lava (one
    # window per sample, reset_offset 1): without the reset a bias would act on layer k for k
    # steps before its data arrives.
    reset = dict(reset_interval=_lava_window(job), reset_offset=1)
    res = emulate(job.model, job.inputs, input_message_bits=job.input_message_bits,
                  record=("spikes",), record_layers=(), loader=job.loader, **reset)
    spikes = res.out_spikes.to(torch.int64).flatten(1, -2).numpy()
    voltage = None
    if res.out_voltage is not None:
        voltage = res.out_voltage.to(torch.int64).flatten(1, -2).numpy()
    seconds = time.time() - t0
    # Per-layer counts on a subset, each layer over its own aligned window of T steps.
    k = min(job.layer_samples, len(job.inputs))
    sub = emulate(job.model, job.inputs[:k], input_message_bits=job.input_message_bits,
                  record=("spikes",), record_layers="all", loader=job.loader, **reset)
    T = job.inputs.shape[-1]
    counts = []
    for rank, idx in enumerate(sorted(sub.spikes), start=1):
        s = sub.spikes[idx]
        counts.append(s[..., rank:rank + T].flatten(1).sum(1).numpy())
    return BackendOutput("emulator", spikes=spikes, voltage=voltage,
                         logits=_logits(spikes, voltage, job.readout), seconds=seconds,
                         layer_counts=counts)


def _lava_window(job: Job) -> int:
    """Lava steps per sample in tna's Lava runner: T, then one drain step per layer and per
    step of axonal delay (tna.lava.backend)."""
    from tna.netx import BLOCK_TYPES, MAX_DELAY
    layers = [layer for layer in job.model.layers if layer.type in BLOCK_TYPES]
    delay = sum(min(int(np.max(layer.delay)), MAX_DELAY) for layer in layers
                if layer.delay is not None and np.size(layer.delay) and layer.type != "conv")
    return job.inputs.shape[-1] + len(layers) + max(delay, 0)


def lava_backend(job: Job, backend: str) -> BackendOutput:
    from tna.lava.info import prepare_lava_import
    prepare_lava_import()     # Lava's import fails once torch has fixed the start method
    from tna.lava.backend import run_lava
    res = run_lava(job.net_path, job.inputs, timesteps=job.inputs.shape[-1],
                   readout="voltage" if job.readout == "voltage" else "spike",
                   input_message_bits=job.input_message_bits, backend=backend,
                   progress=job.progress, models=job.lava_models, loader=job.loader,
                   skip_layers=job.skip_layers)
    spikes = np.asarray(res.spikes).astype(np.int64)
    voltage = None if res.voltage is None else np.asarray(res.voltage).astype(np.int64)
    return BackendOutput(backend, spikes=spikes, voltage=voltage,
                         logits=_logits(spikes, voltage, job.readout), seconds=res.seconds,
                         extra={"lava_steps": res.steps})


# Backend name (tna.deploy.config.BACKENDS) -> the adapter that runs a Job on it.
ADAPTERS = {
    "reference": reference_backend,
    "emulator": emulator_backend,
    "lava-sim": lambda job: lava_backend(job, "lava-sim"),
    "loihi2": lambda job: lava_backend(job, "loihi2"),
}
