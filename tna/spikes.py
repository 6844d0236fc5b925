"""Spike trains held packed, 8 per byte: every layer of every sample of a run fits in memory
(conv-small, 10,000 Fashion-MNIST samples at T = 5: 50 MB per backend instead of 400 MB of
bools), and two backends' spikes compare exactly."""
from __future__ import annotations

import numpy as np

_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)


def pack(spikes) -> np.ndarray:
    """(N, ...) spikes (any nonzero value is a spike; numpy or torch) -> (N, bytes) uint8."""
    a = spikes.detach().cpu().numpy() if hasattr(spikes, "detach") else np.asarray(spikes)
    return np.packbits(a.reshape(len(a), -1) != 0, axis=1)


def counts(packed: np.ndarray) -> np.ndarray:
    """Spikes per sample, (N,)."""
    return _POPCOUNT[packed].sum(1)


def differing(a: np.ndarray, b: np.ndarray) -> int:
    """How many spike values (neuron x step) differ between two packed sets of one layer."""
    return int(_POPCOUNT[np.bitwise_xor(a, b)].sum())


def samples_differing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,) bool: the samples whose spikes differ anywhere in the layer."""
    return np.bitwise_xor(a, b).any(1)
