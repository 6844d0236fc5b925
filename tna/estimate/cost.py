"""Time and energy per inference on Loihi 2, from counted activity and published per-operation
figures. An estimate, derived and stated, never tuned to a measured Loihi 2 result.

Sources
- Loihi 1 (Intel 14 nm), Davies et al., "Loihi: A Neuromorphic Manycore Processor with On-Chip
  Learning", IEEE Micro 38(1), 2018, Table 2 (measured at 0.75 V): energy per synaptic spike op
  23.6 pJ (min), time per synaptic spike op 3.5 ns (max), energy per neuron update 52 pJ active /
  1.7 pJ inactive, time per neuron update 8.4 ns active / 5.3 ns inactive, within-tile spike
  energy 1.7 pJ, mesh-wide barrier synchronisation 113–465 ns (1–32 tiles).
- Loihi 2 (Intel 4), Intel's Loihi 2 technology brief (2021): 128 neurocores per chip, up to
  10x faster processing than Loihi 1. Intel publishes no Loihi 2 per-operation energy or time.

Assumptions for what Loihi 2 changed (each one end of the low-high range):
- time per operation: Loihi 1's divided by 1 (high) to 10 (low), the brief's "up to 10x";
- energy per operation: Loihi 1's times 1 (high) to 0.5 (low): one process generation, taken
  as at most halving it;
- neuron updates: every neuron is updated every step; high counts each at the active figure,
  low at the inactive one (which neurons Loihi 2 skips is not public);
- synaptic ops: high counts every synapse of the lists a spike reads, zero weights included
  (the compiler stores them: tna.estimate.fit), low only the nonzero ones;
- cores run in parallel; a step lasts as long as the busiest core (its synaptic ops and neuron
  updates in series, the mean step of the data) plus one barrier synchronisation;
- an inference lasts T steps (pipelined: a new sample enters every T steps; the first result
  comes L steps later, L the neuron layers).
Dynamic energy only. Static (leakage) energy adds P_static x time per inference, for the
chips used; P_static of a Loihi 2 chip is not published: add a board's measured figure.
"""
from __future__ import annotations

from dataclasses import dataclass

PJ = 1e-12
NS = 1e-9


@dataclass(frozen=True)
class OpFigures:
    """Per-operation figures, Loihi 1 (Davies et al. 2018, Table 2)."""
    synop_pj: float = 23.6              # energy per synaptic spike op (min)
    synop_ns: float = 3.5               # time per synaptic spike op (max)
    neuron_active_pj: float = 52.0      # energy per neuron update, active
    neuron_inactive_pj: float = 1.7     # energy per neuron update, inactive
    neuron_active_ns: float = 8.4       # time per neuron update, active
    neuron_inactive_ns: float = 5.3     # time per neuron update, inactive
    spike_pj: float = 1.7               # within-tile spike energy, per spike sent
    barrier_ns: tuple = (113.0, 465.0)  # mesh-wide barrier sync, 1 to 32 tiles


LOIHI1 = OpFigures()
LOIHI2_SPEEDUP = (10.0, 1.0)            # (low, high) end: Loihi 1 time / Loihi 2 time
LOIHI2_ENERGY = (0.5, 1.0)              # (low, high) end: Loihi 2 energy / Loihi 1 energy


@dataclass(frozen=True)
class Cost:
    """Low-high ranges per inference (dynamic energy)."""
    step_s: tuple                       # time per step
    inference_s: tuple                  # time per inference, T steps
    inferences_per_s: tuple             # (low, high): 1 / the high and low time
    energy_j: tuple                     # dynamic energy per inference
    energy_parts_j: dict                # 'synops', 'neurons', 'spikes' -> (low, high)
    busiest_core: str                   # 'layer/i core k': the core that sets the step time

    def to_dict(self) -> dict:
        return {"step_s": list(self.step_s), "inference_s": list(self.inference_s),
                "inferences_per_s": list(self.inferences_per_s),
                "energy_j": list(self.energy_j),
                "energy_parts_j": {k: list(v) for k, v in self.energy_parts_j.items()},
                "busiest_core": self.busiest_core, "dynamic_only": True,
                "static": "add P_static x inference_s per chip (not published for Loihi 2)"}


def estimate_cost(cores: list, timesteps: int, figures: OpFigures = LOIHI1) -> Cost:
    """`cores`: (name, synops, nonzero synops, spikes, neurons) per core per inference; the
    time and dynamic energy of one inference of `timesteps` steps, as (low, high) ranges."""
    synops = (sum(c[2] for c in cores), sum(c[1] for c in cores))
    spikes = sum(c[3] for c in cores)
    updates = sum(c[4] for c in cores) * timesteps
    e_neu = (updates * figures.neuron_inactive_pj * PJ, updates * figures.neuron_active_pj * PJ)
    e_spk = spikes * figures.spike_pj * PJ
    lo_e, hi_e = LOIHI2_ENERGY
    parts = {"synops": (synops[0] * figures.synop_pj * PJ * lo_e,
                        synops[1] * figures.synop_pj * PJ * hi_e),
             "neurons": (e_neu[0] * lo_e, e_neu[1] * hi_e),
             "spikes": (e_spk * lo_e, e_spk * hi_e)}
    energy = (sum(p[0] for p in parts.values()), sum(p[1] for p in parts.values()))

    def core_ns(c, high: bool) -> float:     # one mean step of one core, Loihi 1 times
        ns = figures.neuron_active_ns if high else figures.neuron_inactive_ns
        return (c[1] if high else c[2]) / timesteps * figures.synop_ns + c[4] * ns

    busiest = max(cores, key=lambda c: core_ns(c, True)) if cores else ("-", 0, 0, 0, 0)
    fast, slow = LOIHI2_SPEEDUP
    barrier = figures.barrier_ns
    step_ns = ((core_ns(busiest, False) + barrier[0]) / fast,
               (core_ns(busiest, True) + barrier[1]) / slow)
    step_s = (step_ns[0] * NS, step_ns[1] * NS)
    inference = (step_s[0] * timesteps, step_s[1] * timesteps)
    return Cost(step_s=step_s, inference_s=inference,
                inferences_per_s=(1 / inference[1], 1 / inference[0]), energy_j=energy,
                energy_parts_j=parts, busiest_core=busiest[0])
