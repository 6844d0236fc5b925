"""Paired statistics over seeds: is a difference between two methods larger than seed noise?

Cells of the same seed share the data order and the base's initialisation, so each claim is
tested on the per-seed differences d_i = a_i - b_i: mean, and its two-sided 95% confidence
interval mean ± t(0.975, n-1) · sd / sqrt(n) (Student's t, sd with n - 1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Paired:
    n: int
    mean: float
    low: float          # 95% CI, percentage points
    high: float

    def verdict(self, margin: float = 0.0) -> str:
        """Claim 'a - b > margin': holds when the whole CI is above the margin, contradicted
        when it is all below, otherwise not shown (as with a single seed)."""
        if self.n < 2:
            return "not shown (1 seed)"
        if self.low > margin:
            return "holds"
        if self.high < margin:
            return "contradicted"
        return "not shown"


def t_quantile(p: float, dof: int) -> float:
    from scipy.stats import t   # scipy comes with lava-nc
    return float(t.ppf(p, dof))


def paired(a: list, b: list) -> Paired:
    """The paired difference a - b (same order: one entry per seed)."""
    if len(a) != len(b) or not a:
        raise ValueError("paired: need equally many values, at least one")
    d = [x - y for x, y in zip(a, b)]
    n = len(d)
    mean = sum(d) / n
    if n < 2:
        return Paired(n, mean, -math.inf, math.inf)
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    half = t_quantile(0.975, n - 1) * sd / math.sqrt(n)
    return Paired(n, mean, mean - half, mean + half)


def mean_std(values: list) -> tuple:
    n = len(values)
    if n == 0:
        return (math.nan, math.nan)
    m = sum(values) / n
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return (m, sd)
