"""The neuron models tna knows, by netx type name; `register_neuron` adds one."""
from __future__ import annotations

from tna.neurons.base import Neuron

NEURONS: list[type[Neuron]] = []       # registration order; the first that handles a name wins


def register_neuron(cls: type[Neuron]) -> type[Neuron]:
    """Class decorator: make `cls` the model of the netx types in its TYPES."""
    if cls not in NEURONS:
        NEURONS.append(cls)
    return cls


def unregister_neuron(cls: type[Neuron]) -> None:
    if cls in NEURONS:
        NEURONS.remove(cls)


def _fallback():
    from tna.neurons.unknown import Unknown
    return Unknown


def model_for(kind: str) -> type[Neuron]:
    """The model of netx neuron type `kind` (Unknown for a type no model handles)."""
    return next((cls for cls in NEURONS if cls.handles(kind)), _fallback())


def from_fields(fields: dict, where: str) -> Neuron:
    """The neuron a netx `neuron` group describes (fields: its scalar datasets)."""
    kind = str(fields.get("type", ""))
    return model_for(kind).from_fields(kind, fields, where)


def handled_by(method: str) -> list[str]:
    """Names of the models that implement `method` (e.g. 'stepper'): what a consumer runs."""
    return [cls.TYPES[0] for cls in NEURONS
            if cls.TYPES and getattr(cls, method) is not getattr(Neuron, method)]


def refusal(neuron: Neuron, where: str, consumer: str, method: str, instead: str = "") -> str:
    """The one line a consumer gives for a neuron it cannot handle: '{where}: {consumer} runs
    CUBA neurons only, not 'SDNN'; {instead}'."""
    names = ", ".join(handled_by(method)) or "no"
    return (f"{where}: {consumer} runs {names} neurons only, not '{neuron.type}'"
            + (f"; {instead}" if instead else ""))
