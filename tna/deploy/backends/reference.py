"""reference: the netx file rebuilt in lava-dl slayer from its integers (tna.reference)."""
from __future__ import annotations

import time

import numpy as np

from tna.deploy.backends.base import BackendOutput, Job, register_backend
from tna.netx import NetxModel


@register_backend("reference")
class Reference:
    forks = False
    partner = 0                       # the default partner: parity is against PyTorch

    def run(self, job: Job) -> BackendOutput:
        from tna.models.snn import import_slayer
        import_slayer()   # a slow first import: not part of the timing

        from tna.reference import run_reference
        t0 = time.time()
        out = run_reference(job.model, job.inputs, readout=job.readout, progress=job.progress)
        return BackendOutput(
            self.name, spikes=out.spikes.numpy().astype(np.int64),
            voltage=out.voltage.numpy().astype(np.int64), logits=out.logits.numpy(),
            seconds=time.time() - t0, layer_spikes=out.layer_spikes)

    def unsupported(self, model: NetxModel) -> str | None:
        from tna.reference import unsupported
        return unsupported(model)
