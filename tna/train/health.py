"""Is a run dying? One-line warnings that name the likely cause and the flag to change.

Checked after every epoch (and spike activity once at the start). The lines are printed and
kept in the checkpoint and in result.json["warnings"].
"""
from __future__ import annotations

from tna.metrics import at_chance

SILENT = 0.005          # a layer spiking at under 0.5% of neurons x steps is nearly dead
SATURATED = 0.95        # ... and at over 95% it carries almost no information


def accuracy_warning(name: str, acc: float, num_classes: int, epoch: int,
                     cause: str | None = None) -> str | None:
    """A warning when `acc` (%) is at chance (see `at_chance`); `cause` replaces the general
    advice when the likely cause is known (see `compression_cause`)."""
    if not at_chance(acc, num_classes):
        return None
    chance = 100.0 / num_classes
    advice = cause or ("the run is not learning: lower --lr, add --warmup 1, check --augment "
                       "and --crop-padding for small images, or raise --weight-scale if layers "
                       "are silent")
    return (f"warning: epoch {epoch}: {name} accuracy {acc:.1f}% is at chance "
            f"({chance:.1f}%); {advice}")


def compression_cause(mode: str, compress_after: int, delta: float) -> str:
    """The advice for a base at chance since its hidden layers were compressed: weights
    within delta of 0 become 0, and a short fp phase leaves whole layers there."""
    grow = f" so its weights grow past --delta ({delta:g}), or lower --delta" \
        if mode == "ternary" else ""
    return (f"its hidden layers are {mode} from epoch {compress_after + 1} on: give it more fp "
            f"epochs first (raise --ternary-after, now {compress_after}){grow}")


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
