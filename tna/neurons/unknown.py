"""A neuron type no model handles: kept as read, so that `validate` can name it."""
from __future__ import annotations

from dataclasses import dataclass

from tna.neurons.base import Neuron


@dataclass
class Unknown(Neuron):
    """Any `neuron/type` that neither netx nor tna knows; every field is kept in `extra`."""
    NETX_BUILDS = False
    vth_mant: int | None = None

    @classmethod
    def handles(cls, kind: str) -> bool:
        return True

    @classmethod
    def from_fields(cls, kind, fields, where):
        vth = fields.get("vThMant")
        rest = {k: v for k, v in fields.items() if k not in ("type", "vThMant")}
        return cls(vth_mant=None if vth is None else int(vth), type=kind, extra=rest)

    def to_fields(self) -> dict:
        out = {"type": self.type}
        if self.vth_mant is not None:
            out["vThMant"] = int(self.vth_mant)
        return {**out, **self.extra}

    def errors(self, where: str) -> list[str]:
        return [f"{where}: netx cannot build neuron type '{self.type}' (it builds CUBA, LOIHI, "
                f"SDNN and RF types)"]
