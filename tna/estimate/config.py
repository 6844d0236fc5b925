"""`EstimateConfig`: the per-core budgets of Loihi 2 as Intel's compiler counts them.

The defaults are read off the compiler's own printouts of three netx nets (../shared/loihi2,
docs/loihi2-estimate.md): percentages of the 2024 compiler divided back into counts, and the
synaptic-memory budget its violation lines print.
"""
from __future__ import annotations

from dataclasses import dataclass

from tna.config import check_int
from tna.errors import TnaError

LOADERS = ("netx", "tna")


@dataclass(frozen=True)
class EstimateConfig:
    syn_mem: int = 12000            # synaptic memory per core, 64-bit words (SynMem; 8184 before 2022-10)
    dense_extra_bits: int = 12      # bits a dense synapse takes besides its weight (fitted; 10 before 2022-10)
    neurons: int = 4096             # neurons per core (2024 printout: 10 neurons = 0.24%)
    list_words: int = 32            # longest synapse list one input axon may have on a core, 64-bit words (inferred: Oxford's 256-neuron layer takes 3 cores)
    axons_in: int = 16000           # input axons per core (784 = 4.90%)
    axon_map: int = 16000           # output axon map entries per core (one per neuron; 64 = 0.40%)
    neuron_groups: int = 8          # neuron groups per core (1 = 12.50%)
    cores_per_chip: int = 128       # neurocores per Loihi 2 chip (Intel's brief)
    loader: str = "tna"             # whose weight bits the synapses get: tna (tna run's: 2-bit ternary convs) | netx (unmodified netx: convs as the file's integers)

    def __post_init__(self):
        check_int("dense_extra_bits", self.dense_extra_bits, 0)
        for key in ("syn_mem", "neurons", "list_words", "axons_in", "axon_map", "neuron_groups",
                    "cores_per_chip"):
            check_int(key, getattr(self, key), 1)
        if self.loader not in LOADERS:
            raise TnaError(f"loader = {self.loader!r}: choose one of {', '.join(LOADERS)}")
