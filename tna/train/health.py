"""Is a run dying? One-line warnings that name the likely cause and the flag to change.

Checked after every epoch (and spike activity once at the start). The lines are printed and
kept in the checkpoint and in result.json["warnings"].
"""
from __future__ import annotations

from tna.metrics import at_chance

SILENT = 0.005          # a layer spiking at under 0.5% of neurons x steps is nearly dead
SATURATED = 0.95        # ... and at over 95% it carries almost no information


def accuracy_warning(name: str, acc: float, num_classes: int, epoch: int) -> str | None:
    """A warning when `acc` (%) is at chance (see `at_chance`)."""
    if not at_chance(acc, num_classes):
        return None
    chance = 100.0 / num_classes
    return (f"warning: epoch {epoch}: {name} accuracy {acc:.1f}% is at chance ({chance:.1f}%); "
            f"the run is not learning: lower --lr, add --warmup 1, check --augment and "
            f"--crop-padding for small images, or raise --weight-scale if layers are silent")


def activity_warnings(rates: list[float], epoch: int | None = None,
                      names: list[str] | None = None) -> list[str]:
    """Warnings for spiking layers that are (nearly) silent or saturated; rates are fractions.
    `names`: each spiking layer's name, as the exported file numbers it (layer/1, ...)."""
    when = f"epoch {epoch}: " if epoch is not None else "at start: "
    names = names or [f"spiking layer {i}" for i in range(len(rates))]
    out = []
    for name, r in zip(names, rates):
        if r < SILENT:
            out.append(f"warning: {when}{name} fires {100 * r:.2f}% of the time "
                       f"(nearly silent: gradients cannot reach the layers before it); raise "
                       f"--weight-scale or lower --threshold, or lower --lr if it died in training")
        elif r > SATURATED:
            out.append(f"warning: {when}{name} fires {100 * r:.1f}% of the time "
                       f"(saturated: it carries almost no information); raise --threshold or "
                       f"lower --weight-scale")
    return out
