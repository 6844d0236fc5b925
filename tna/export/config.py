"""`ExportConfig`: the options of `tna export`."""
from __future__ import annotations

from dataclasses import dataclass

from tna.config import check_int
from tna.errors import TnaError


@dataclass(frozen=True)
class ExportConfig:
    out: str = "model.net"          # the .net file to write
    ternary: bool = False           # compress an fp checkpoint's hidden layers (Eq. 6) first
    delta: float | None = None      # ternary threshold; None = the checkpoint's (or 0.1)
    split: str = "test"             # data split for the reference accuracy: test | val
    limit: int | None = None        # evaluate the reference on at most N samples
    data_dir: str | None = None     # override the checkpoint's data folder
    input_message_bits: int = 8     # graded-spike payload bits for direct input (netx option)
    verify: bool = True             # load the file with netx and report its weight bits
    check: str = "emulator"         # who measures the exported net's accuracy: emulator (bit-exact, fast) | reference (slayer, slower)
    force: bool = False             # replace an existing --out file
    progress: bool = True
    format: str | None = None       # netx (HDF5) | nir (a NIR graph, nir.write); default: nir when --out ends in .nir, else netx
    dt: float | None = None         # NIR only: seconds per time step for NIR's time constants (snnTorch's importer needs 1e-4); default 1e-4
    nir_form: str | None = None     # NIR only: portable (a voltage readout as a CubaLIF that never spikes, pools and grouped convs as Conv2d: snnTorch 1.0 and Norse 1.1 import it) | native (NIR's CubaLI and SumPool2d); default portable

    def __post_init__(self):
        if self.split not in ("test", "val"):
            raise TnaError(f"split = {self.split!r}: choose test or val")
        check_int("limit", self.limit, 1, allow_none=True)
        if self.delta is not None and not 0 <= self.delta < 4:
            raise TnaError(f"delta = {self.delta!r}: must be in [0, 4) (slayer weight units)")
        if self.check not in ("emulator", "reference"):
            raise TnaError(f"check = {self.check!r}: choose emulator (bit-exact, fast) or "
                           f"reference (slayer)")
        if not 1 <= self.input_message_bits <= 24:
            raise TnaError(f"input_message_bits = {self.input_message_bits}: must be 1..24")
        if self.format not in (None, "netx", "nir"):
            raise TnaError(f"format = {self.format!r}: choose netx or nir")
        if self.nir_form not in (None, "portable", "native"):
            raise TnaError(f"nir_form = {self.nir_form!r}: choose portable or native")
        if self.dt is not None and not (isinstance(self.dt, (int, float)) and self.dt > 0):
            raise TnaError(f"dt = {self.dt!r}: seconds per time step, a number above 0")

    @property
    def is_nir(self) -> bool:
        """Whether the export writes a NIR graph: --format nir, or an --out ending in .nir."""
        return (self.format or ("nir" if self.out.endswith(".nir") else "netx")) == "nir"
