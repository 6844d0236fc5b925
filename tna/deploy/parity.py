"""Parity between two backends' outputs: agreement, differing values (per layer), divergence,
accuracy.

Accuracy difference: both backends see the same samples, so the 95% interval is the paired
one: d_i = correct_a,i - correct_b,i, mean(d) +- 1.96 * sd(d) / sqrt(n) (normal approximation;
it is exactly [0, 0] when the two agree on every sample).
"""
from __future__ import annotations

import math

import numpy as np

from tna.deploy.backends import BackendOutput
from tna.errors import TnaBug


def _first_divergence(a: np.ndarray | None, b: np.ndarray | None) -> int | None:
    """Earliest aligned time step at which any sample's outputs differ."""
    if a is None or b is None:
        return None
    diff = (a != b).reshape(-1, a.shape[-1]).any(0)
    return int(np.argmax(diff)) if diff.any() else None


def compare(a: BackendOutput, b: BackendOutput, labels: np.ndarray | None,
            layer_names: dict | None = None) -> dict:
    """Parity of two backends' outputs on the same samples. Spikes are compared on every
    layer both backends read (`layer_spikes`; Lava reads the output layer only), each named
    by `layer_names` (netx layer index -> name)."""
    from tna import spikes as packed
    check_shapes(a, b)
    n = len(a.logits)
    if labels is not None and np.shape(labels) != (n,):
        raise TnaBug(f"{np.shape(labels)} labels for {n} samples")
    pa, pb = a.logits.argmax(1), b.logits.argmax(1)
    agree = int((pa == pb).sum())
    voltage_diff = None
    if a.voltage is not None and b.voltage is not None:
        voltage_diff = int((a.voltage != b.voltage).sum())
    per_sample = (a.spikes != b.spikes).reshape(n, -1).any(1)
    if voltage_diff:
        per_sample |= (a.voltage != b.voltage).reshape(n, -1).any(1)
    names = layer_names or {}
    by_layer = {}
    for i in sorted(set(a.layer_spikes) & set(b.layer_spikes)):
        by_layer[names.get(i, f"layer/{i}")] = packed.differing(a.layer_spikes[i],
                                                                b.layer_spikes[i])
        per_sample |= packed.samples_differing(a.layer_spikes[i], b.layer_spikes[i])
    steps = [s for s in (_first_divergence(a.spikes, b.spikes),
                         _first_divergence(a.voltage, b.voltage)) if s is not None]
    row = {
        "a": a.name, "b": b.name, "samples": n,
        "prediction_agreement": agree, "prediction_agreement_pct": 100.0 * agree / max(n, 1),
        "spike_values_differing": (sum(by_layer.values()) if by_layer
                                   else int((a.spikes != b.spikes).sum())),
        "spike_values_differing_by_layer": by_layer,
        "voltage_values_differing": voltage_diff,
        "samples_differing": int(per_sample.sum()),
        "samples_differing_pct": 100.0 * float(per_sample.mean()) if n else 0.0,
        "first_divergent_step": min(steps) if steps else None,
    }
    check_counts(row, a, b)
    if labels is not None:
        ca, cb = (pa == labels).astype(float), (pb == labels).astype(float)
        d = ca - cb
        half = 1.96 * d.std(ddof=1) / math.sqrt(n) if n > 1 else 0.0
        row.update({
            f"accuracy_{a.name}": 100.0 * ca.mean(), f"accuracy_{b.name}": 100.0 * cb.mean(),
            "accuracy_difference": 100.0 * d.mean(),
            "accuracy_difference_ci95": [100.0 * (d.mean() - half), 100.0 * (d.mean() + half)],
        })
    return row


def check_shapes(a: BackendOutput, b: BackendOutput) -> None:
    """Two backends' outputs of one run have the same shapes: logits (N, outputs), spikes and
    voltages (N, outputs, T), every layer's packed spikes (N, bytes). Else a TnaBug: a
    verdict on outputs that cannot be compared would be a lie."""
    def shape(x):
        return None if x is None else tuple(np.shape(x))
    la, lb = shape(a.logits), shape(b.logits)
    if len(la) != 2 or la != lb:
        raise TnaBug(f"{a.name} and {b.name} gave logits shaped {la} and {lb}, not both "
                     f"(samples, outputs)")
    n, outputs = la
    for what in ("spikes", "voltage"):
        sa, sb = shape(getattr(a, what)), shape(getattr(b, what))
        for name, s in ((a.name, sa), (b.name, sb)):
            if s is not None and (len(s) != 3 or s[:2] != (n, outputs)):
                raise TnaBug(f"{name} gave {what} shaped {s} for logits {la}, not "
                             f"(samples, outputs, steps)")
        if sa is not None and sb is not None and sa != sb:
            raise TnaBug(f"{a.name} and {b.name} gave {what} shaped {sa} and {sb}")
    for i in set(a.layer_spikes) & set(b.layer_spikes):
        sa, sb = shape(a.layer_spikes[i]), shape(b.layer_spikes[i])
        if sa != sb or sa[0] != n:
            raise TnaBug(f"{a.name} and {b.name} gave layer {i}'s spikes shaped {sa} and "
                         f"{sb} for {n} samples")


def check_counts(row: dict, a: BackendOutput, b: BackendOutput) -> None:
    """Every count of a parity row within its bound (agreements and differing samples <= the
    samples, differing values <= the values compared), else a TnaBug."""
    n = row["samples"]
    both = set(a.layer_spikes) & set(b.layer_spikes)     # packed 8 per byte
    spike_values = sum(8 * a.layer_spikes[i].size for i in both) if both else a.spikes.size
    bounds = [("predictions agreeing", row["prediction_agreement"], n),
              ("samples differing", row["samples_differing"], n),
              ("spike values differing", row["spike_values_differing"], spike_values)]
    if row["voltage_values_differing"] is not None:
        bounds.append(("voltage values differing", row["voltage_values_differing"],
                       a.voltage.size))
    for what, count, bound in bounds:
        if not 0 <= count <= bound:
            raise TnaBug(f"{a.name} vs {b.name}: {count} {what} of {bound}")
