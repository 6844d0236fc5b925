"""The lr schedules: warm-up, cosine to zero, the paper's per-epoch exponential decay."""
import math

import pytest

from tna.train import TrainConfig
from tna.train.loop import lr_factor


def test_cosine_starts_at_one_and_ends_at_zero():
    cfg = TrainConfig(epochs=4, lr_schedule="cosine")
    assert lr_factor(0, 10, cfg) == 1.0
    assert lr_factor(20, 10, cfg) == pytest.approx(0.5)
    assert lr_factor(40, 10, cfg) == pytest.approx(0.0, abs=1e-12)


def test_warmup_is_linear_then_cosine_over_the_rest():
    cfg = TrainConfig(epochs=5, warmup=1, lr_schedule="cosine")
    assert lr_factor(0, 10, cfg) == pytest.approx(0.01)
    assert lr_factor(5, 10, cfg) == pytest.approx(0.01 + 0.99 * 0.5)
    assert lr_factor(10, 10, cfg) == 1.0
    assert lr_factor(30, 10, cfg) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))


def test_exp_is_the_papers_decay_per_epoch():
    cfg = TrainConfig(epochs=4, lr_schedule="exp", lr_gamma=0.928)
    assert [lr_factor(s, 10, cfg) for s in (0, 9, 10, 25)] == \
        pytest.approx([1, 1, 0.928, 0.928 ** 2])


@pytest.mark.parametrize("bad", [dict(lr_schedule="step"), dict(warmup=4, epochs=4),
                                 dict(tau_grad=0), dict(crop_padding=-1),
                                 dict(ternary_scale="two")])
def test_bad_schedule_settings_are_named(bad):
    from tna.errors import TnaError
    with pytest.raises(TnaError, match=next(iter(bad))):
        TrainConfig(**bad)
