"""`estimate(model, cfg, activity) -> Estimate`: cores, chips and (with activity) time and
energy per inference of a netx net on Loihi 2, labelled everywhere as an estimate."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tna import netx
from tna.estimate.activity import Activity
from tna.estimate.config import EstimateConfig
from tna.estimate.cost import Cost, estimate_cost
from tna.estimate.fit import fit_layers

LABEL = "Loihi 2 estimate (of Intel's compiler and chip, not their output)"


@dataclass
class Estimate:
    cfg: EstimateConfig
    layers: list                        # LayerFit per neuron layer
    activity: Activity | None = None
    cost: Cost | None = None
    per_core: list = field(default_factory=list)   # (name, synops, nonzero synops, spikes,
                                                   # neurons) per core, per inference

    @property
    def cores(self) -> int:
        return sum(f.cores for f in self.layers)

    @property
    def chips(self) -> int:
        return max(1, math.ceil(self.cores / self.cfg.cores_per_chip))

    @property
    def problems(self) -> list:
        return [f"layer/{f.index} ({f.type}): {f.problem}" for f in self.layers if f.problem]

    @property
    def fits_one_chip(self) -> bool:
        return not self.problems and self.cores <= self.cfg.cores_per_chip

    def warnings(self) -> list:
        """What `tna validate` warns about: layers the estimate cannot map, more than one chip."""
        out = [f"Loihi 2 estimate: cannot map {p}" for p in self.problems]
        if not out and not self.fits_one_chip:
            out.append(f"Loihi 2 estimate: the net needs {self.cores} cores, {self.chips} chips "
                       f"of {self.cfg.cores_per_chip} (tna inspect --loihi2 shows the layers)")
        return out

    def brief(self) -> str:
        """One line: cores, chips and (with activity) energy per inference."""
        if self.problems:
            return f"{LABEL}: cannot map {self.problems[0]}"
        line = (f"{LABEL}: {self.cores} cores, {self.chips} chip{'s' if self.chips > 1 else ''}"
                f"{'' if self.fits_one_chip else ' (more than one chip)'}")
        if self.cost is not None:
            lo, hi = self.cost.energy_j
            line += f", {_si(lo, 'J')}–{_si(hi, 'J')} dynamic energy per inference"
        return line

    def to_dict(self) -> dict:
        d = {"estimate_of": "Intel's Loihi 2 compiler and chip (not their output)",
             "budgets_per_core": {"syn_mem_words": self.cfg.syn_mem, "neurons": self.cfg.neurons,
                                  "axons_in": self.cfg.axons_in, "axon_map": self.cfg.axon_map,
                                  "neuron_groups": self.cfg.neuron_groups},
             "loader": self.cfg.loader, "cores": self.cores, "chips": self.chips,
             "cores_per_chip": self.cfg.cores_per_chip, "fits_one_chip": self.fits_one_chip,
             "problems": self.problems, "layers": [f.to_dict() for f in self.layers]}
        if self.activity is not None:
            a = self.activity
            d["activity_per_inference"] = {
                "samples": a.samples, "timesteps": a.timesteps, "synops": a.synops,
                "synops_nonzero": a.synops_nonzero, "spikes": a.spikes,
                "neuron_updates": a.updates,
                "layers": {f"layer/{i}": {"events_in": x.events_in, "synops": x.synops,
                                          "synops_nonzero": x.synops_nonzero,
                                          "spikes": x.spikes, "neuron_updates": x.updates}
                           for i, x in a.layers.items()},
                "cores": [{"core": c[0], "synops": c[1], "synops_nonzero": c[2],
                           "spikes": c[3], "neurons": c[4]} for c in self.per_core]}
        if self.cost is not None:
            d["cost_per_inference"] = self.cost.to_dict()
        return d

    def summary(self) -> str:
        cfg = self.cfg
        rows = [["layer", "type", "shape", "cores", "tile/core", "neurons/core", "groups",
                 "axons in", "syn mem/core", "w bits", "binds"]]
        for f in self.layers:
            if f.problem:
                rows.append([f"layer/{f.index}", f.type, _dims(f.shape), "-", "-", "-", "-",
                             "-", "-", "-", "cannot map"])
                continue
            rows.append([f"layer/{f.index}", f.type, _dims(f.shape), str(f.cores), _dims(f.tile),
                         f"{f.neurons:,}", str(f.groups),
                         "-" if f.axons_in is None else f"{f.axons_in:,}",
                         f"{f.syn_mem:,} ({100 * f.syn_mem / cfg.syn_mem:.0f}%)",
                         str(f.weight_bits or "-"), f.binding or "-"])
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        lines = [f"{LABEL}; per-core budgets: {cfg.syn_mem:,} words of synaptic memory, "
                 f"{cfg.neurons:,} neurons, {cfg.axons_in:,} input axons"]
        lines += ["  " + "  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
        for p in self.problems:
            lines.append(f"  cannot map {p}")
        verdict = ("fits one chip" if self.fits_one_chip else
                   "does not map" if self.problems else "needs more than one chip")
        lines.append(f"  total: {self.cores} cores, {self.chips} chip"
                     f"{'s' if self.chips > 1 else ''} of {cfg.cores_per_chip} cores: {verdict}")
        if self.activity is not None:
            a = self.activity
            lines.append(f"  per inference ({a.samples} sample{'s' if a.samples != 1 else ''}, "
                         f"T = {a.timesteps} steps): {a.spikes:,.0f} spikes, {a.synops:,.0f} "
                         f"synaptic ops ({a.synops_nonzero:,.0f} on nonzero weights), "
                         f"{a.updates:,.0f} neuron updates")
        if self.cost is not None:
            c = self.cost
            e_lo, e_hi = c.energy_j
            syn_share = c.energy_parts_j["synops"][1] / e_hi if e_hi else 0.0
            lines.append(f"  time per inference {_si(c.inference_s[0], 's')}–"
                         f"{_si(c.inference_s[1], 's')} ({_count(c.inferences_per_s[0])}–"
                         f"{_count(c.inferences_per_s[1])} inferences/s; busiest core "
                         f"{c.busiest_core}); dynamic energy {_si(e_lo, 'J')}–{_si(e_hi, 'J')} "
                         f"per inference ({100 * syn_share:.0f}% synaptic ops at the high end)")
            lines.append("  static energy adds P_static x time per inference per chip (P_static "
                         "of Loihi 2 is not published); the model and its sources: "
                         "docs/loihi2-estimate.md")
        return "\n".join(lines)


def _dims(t) -> str:
    return "x".join(str(int(s)) for s in t) if t else "-"


def _si(x: float, unit: str) -> str:
    for scale, prefix in ((1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p")):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}"


def _count(x: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= scale:
            return f"{x / scale:.3g}{suffix}"
    return f"{x:.3g}"


def _per_core(layers: list, activity: Activity) -> list:
    out = []
    for f in layers:
        act = activity.layers.get(f.index)
        if act is None or f.problem:
            continue
        syn = np.asarray(act.synops_per_neuron).reshape(-1)
        nz = np.asarray(act.synops_nonzero_per_neuron).reshape(-1)
        spk = np.asarray(act.spikes_per_neuron).reshape(-1)
        for k, s in enumerate(f.slices):
            out.append((f"layer/{f.index} core {k}", float(syn[s].sum()), float(nz[s].sum()),
                        float(spk[s].sum()), int(len(s))))
    return out


def estimate(model: netx.NetxModel, cfg: EstimateConfig = EstimateConfig(),
             activity: Activity | None = None, skip_layers: int = 0) -> Estimate:
    """Map `model` onto Loihi 2 cores; with `activity` (tna.estimate.count on data, keyed by
    the file's layer indices), add the time and energy per inference. `skip_layers`: as
    netx.hdf5.Network's (Intel's PilotNet tutorials load with 1): the first layers are left
    out; layers keep the file's numbers."""
    run, _ = netx.skip_layers(model, skip_layers)
    layers = fit_layers(run, cfg)
    for f in layers:
        f.index += len(model.layers) - len(run.layers)    # the file's number of the layer
    est = Estimate(cfg=cfg, layers=layers, activity=activity)
    if activity is not None and not est.problems:
        est.per_core = _per_core(est.layers, activity)
        est.cost = estimate_cost(est.per_core, activity.timesteps)
    return est
