"""What every backend takes (`Job`) and gives (`BackendOutput`), the `Backend` contract, and
the registry that `register_backend` fills (in the style of torchao's
`register_quantize_module_handler`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

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
    layer_spikes: dict = field(default_factory=dict)   # netx layer index -> aligned spikes of
                                       # every sample, packed (tna.spikes); the layers it read
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    """What every backend is given."""
    net_path: str
    model: NetxModel
    inputs: np.ndarray                 # integers, slayer layout, (N, ..., T)
    readout: str                       # 'voltage' | 'spike'
    input_message_bits: int
    progress: bool
    lava_models: str = "fast"
    loader: str = "tna"                # netx loader Lava uses: tna (2-bit ternary convs) | netx
    skip_layers: int = 0               # Lava loads the file with netx's skip_layers; `model` is
                                       # already what that leaves (tna.netx.skip_layers)


class Backend(Protocol):
    """The contract of a backend."""
    name: str                          # set by register_backend
    forks: bool                        # it starts OS processes (Lava): run it first, before
                                       # torch's thread pools exist in this process
    partner: int | None                # rank as the default partner to compare a target with
                                       # (lowest first), None: never a default partner

    def run(self, job: Job) -> BackendOutput:
        """Run every sample of `job` and return the output on the aligned timeline."""

    def unsupported(self, model: NetxModel) -> str | None:
        """Why this backend cannot run `model` (one line naming the layer), else None."""


BACKENDS: dict[str, Backend] = {}


def register_backend(name: str):
    """Class decorator: instantiate the backend class and register it under `name`."""
    def deco(cls):
        if name in BACKENDS:
            raise ValueError(f"backend {name!r} is registered twice")
        backend = cls()
        backend.name = name
        BACKENDS[name] = backend
        return cls
    return deco


def logits(spikes: np.ndarray, voltage: np.ndarray | None, readout: str) -> np.ndarray:
    """The readout over T: summed voltage ('voltage') or spike count ('spike')."""
    if readout == "voltage":
        if voltage is None:
            raise TnaError("readout 'voltage' but the backend returned no voltage")
        return voltage.astype(np.int64).sum(-1)
    return spikes.astype(np.int64).sum(-1)
