"""`ImportConfig`: the options of `tna import` (NIR -> netx)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from tna.errors import TnaError

DEFAULT_DT = 1e-4          # s per time step written by `tna export --format nir`: snnTorch's
                           # importer fixes dt at 1e-4 s; for tna and Norse only dt/tau matters
FORMS = ("portable", "native")   # how `tna export --format nir` writes a readout and pools:
                                 # portable: nodes snnTorch 1.0 and Norse 1.1 import (a CubaLIF
                                 # that never spikes; a pool as a Conv2d); native: CubaLI and
                                 # SumPool2d. Grouped convs are written with groups 1 in both.
FORMAT_VERSION = 1         # of the graph metadata tna writes; bump on incompatible change


@dataclass(frozen=True)
class ImportConfig:
    out: str = "model.net"              # the .net file to write
    dt: float | None = None             # s per time step; default: the graph's metadata 'dt'
    timesteps: int | None = None        # T; default: the graph's metadata (tna graphs carry it)
    input_message_bits: int = 0         # graded input bits for foreign graphs; 0 = binary spikes
    force: bool = False                 # replace an existing --out file

    def __post_init__(self):
        if self.dt is not None and not (math.isfinite(self.dt) and self.dt > 0):
            raise TnaError(f"dt = {self.dt!r}: seconds per time step, a finite number > 0")
        t = self.timesteps
        if t is not None and (isinstance(t, bool) or not isinstance(t, int) or t < 1):
            raise TnaError(f"timesteps = {t!r}: must be a whole number ≥ 1")
        if not 0 <= self.input_message_bits <= 24:
            raise TnaError(f"input_message_bits = {self.input_message_bits}: must be 0..24")
