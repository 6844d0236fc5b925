"""Paired statistics, checked against hand-computed cases."""
import math

import pytest

from tna.bench.stats import mean_std, paired


def test_paired_ci_by_hand():
    # d = (1, 2, 3): mean 2, sd 1, t(0.975, 2) = 4.302653, half width 4.302653 / sqrt(3)
    p = paired([11.0, 12.0, 13.0], [10.0, 10.0, 10.0])
    half = 4.302653 / math.sqrt(3)
    assert p.n == 3 and p.mean == pytest.approx(2.0)
    assert p.low == pytest.approx(2 - half, abs=1e-5) and p.high == pytest.approx(2 + half,
                                                                                   abs=1e-5)
    assert p.verdict() == "not shown"          # -0.48 < 0 < 4.48
    assert p.verdict(margin=-1.0) == "holds"   # the CI lies above -1


def test_verdicts():
    assert paired([90.0, 91.0, 90.5, 90.7], [88.0, 88.9, 88.6, 88.5]).verdict() == "holds"
    assert paired([88.0, 88.9, 88.6, 88.5], [90.0, 91.0, 90.5, 90.7]).verdict() == \
        "contradicted"
    assert paired([90.0], [80.0]).verdict() == "not shown (1 seed)"


def test_mean_std():
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert mean_std([5.0]) == (5.0, 0.0)
    with pytest.raises(ValueError):
        paired([1.0], [])
