"""lava-sim and loihi2: the real Lava simulator (Loihi2SimCfg fixed_pt) and Loihi 2 through
lava-loihi, both through tna's Lava runner (tna.lava.runner)."""
from __future__ import annotations

import numpy as np

from tna.deploy.backends.base import BackendOutput, Job, logits, register_backend
from tna.netx import NetxModel


class _Lava:
    forks = True                      # Lava forks its processes
    partner = None

    def run(self, job: Job) -> BackendOutput:
        from tna.lava.info import prepare_lava_import
        prepare_lava_import()     # Lava's import fails once torch has fixed the start method
        from tna.lava.runner import run_lava
        from tna.spikes import pack
        res = run_lava(job.net_path, job.inputs, timesteps=job.inputs.shape[-1],
                       readout="voltage" if job.readout == "voltage" else "spike",
                       input_message_bits=job.input_message_bits, backend=self.name,
                       progress=job.progress, models=job.lava_models, loader=job.loader,
                       skip_layers=job.skip_layers, model=job.model)
        spikes = np.asarray(res.spikes).astype(np.int64)
        voltage = None if res.voltage is None else np.asarray(res.voltage).astype(np.int64)
        out = len(job.model.layers) - 1           # Lava's sink reads the output layer only
        return BackendOutput(self.name, spikes=spikes, voltage=voltage,
                             logits=logits(spikes, voltage, job.readout), seconds=res.seconds,
                             layer_spikes={out: pack(spikes)}, extra={"lava_steps": res.steps})

    def unsupported(self, model: NetxModel) -> str | None:
        return None                   # Lava runs every file netx loads (tna.netx.validate)


@register_backend("lava-sim")
class LavaSim(_Lava):
    pass


@register_backend("loihi2")
class Loihi2(_Lava):
    pass
