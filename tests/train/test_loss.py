"""The training losses against numbers worked out by hand (math, not torch.nn.functional).

Eq. 5 of the paper: L = CE(base) + CE(twin) + alpha * MSE(logits_base, logits_twin), where CE is
the mean over the batch of -log softmax(logits)[label] and MSE is the mean over every logit.
"""
import math

import pytest
import torch

from tna.train.loop import loss_terms

BASE = [[2.0, 1.0, 0.0], [0.5, -1.0, 3.0]]
TWIN = [[1.0, 1.0, 1.0], [0.0, 0.0, 4.0]]
TEACHER = [[3.0, 0.0, -1.0], [1.5, -1.0, 1.0]]
LABELS = [0, 2]


def ce_by_hand(rows, labels):
    """Mean over rows of log(sum(exp(row))) - row[label]."""
    total = 0.0
    for row, y in zip(rows, labels):
        total += math.log(sum(math.exp(v) for v in row)) - row[y]
    return total / len(rows)


def mse_by_hand(a, b):
    diffs = [(x - y) ** 2 for ra, rb in zip(a, b) for x, y in zip(ra, rb)]
    return sum(diffs) / len(diffs)


def t(rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_hand_values_are_what_we_think():
    # The twin's first row is uniform: CE = log 3 exactly; its second row: log(2 + e^4) - 4.
    assert ce_by_hand(TWIN, LABELS) == pytest.approx(
        (math.log(3) + math.log(2 + math.exp(4)) - 4) / 2, rel=1e-15)
    # Squared differences: 1, 0, 1, 0.25, 1, 1 -> 4.25 / 6.
    assert mse_by_hand(BASE, TWIN) == pytest.approx(4.25 / 6, rel=1e-15)


@pytest.mark.parametrize("alpha", [0.0, 1e-4, 0.5, 3.0])
def test_tna_loss_is_eq5(alpha):
    terms = loss_terms(t(BASE), torch.tensor(LABELS), twin_logits=t(TWIN), method="tna",
                       alpha=alpha)
    ce_b, ce_t = ce_by_hand(BASE, LABELS), ce_by_hand(TWIN, LABELS)
    mse = mse_by_hand(BASE, TWIN)
    assert terms["ce_base"].item() == pytest.approx(ce_b, rel=1e-12)
    assert terms["ce_twin"].item() == pytest.approx(ce_t, rel=1e-12)
    assert terms["mse"].item() == pytest.approx(4.25 / 6, rel=1e-12)
    assert terms["loss"].item() == pytest.approx(ce_b + ce_t + alpha * mse, rel=1e-12)


def test_tna_loss_gradient_reaches_both_nets():
    base, twin = t(BASE).requires_grad_(), t(TWIN).requires_grad_()
    loss_terms(base, torch.tensor(LABELS), twin_logits=twin, method="tna", alpha=1.0)["loss"] \
        .backward()
    # d MSE / d base = 2 (base - twin) / 6, plus the CE gradient softmax - onehot over 2 rows.
    row = BASE[0]
    z = sum(math.exp(v) for v in row)
    expect = (math.exp(row[0]) / z - 1) / 2 + 2 * (BASE[0][0] - TWIN[0][0]) / 6
    assert base.grad[0, 0].item() == pytest.approx(expect, rel=1e-12)
    assert twin.grad.abs().sum() > 0


def test_single_is_plain_cross_entropy():
    terms = loss_terms(t(BASE), torch.tensor(LABELS), method="single")
    assert set(terms) == {"ce_base", "loss"}
    assert terms["loss"].item() == pytest.approx(ce_by_hand(BASE, LABELS), rel=1e-12)


def test_kd_is_mse_to_teacher_only():
    terms = loss_terms(t(BASE), torch.tensor(LABELS), teacher_logits=t(TEACHER), method="kd",
                       alpha=123.0)   # alpha plays no part in kd
    # Squared differences: 1, 1, 1, 1, 0, 4 -> 8 / 6.
    assert terms["loss"].item() == pytest.approx(8 / 6, rel=1e-12)
    assert "ce_base" not in terms


@pytest.mark.parametrize("alpha", [1e-4, 2.0])
def test_kd_ce_is_ce_plus_alpha_mse(alpha):
    terms = loss_terms(t(BASE), torch.tensor(LABELS), teacher_logits=t(TEACHER),
                       method="kd-ce", alpha=alpha)
    expect = ce_by_hand(BASE, LABELS) + alpha * 8 / 6
    assert terms["loss"].item() == pytest.approx(expect, rel=1e-12)
    assert terms["mse"].item() == pytest.approx(8 / 6, rel=1e-12)


def test_label_smoothing_by_hand():
    # PyTorch's smoothing eps: (1 - eps) * CE + eps * mean over the K classes of -log p_k,
    # applied to both CE terms of Eq. 5 and not to the MSE.
    eps = 0.1

    def smoothed(rows, labels):
        total = 0.0
        for row, y in zip(rows, labels):
            lse = math.log(sum(math.exp(v) for v in row))
            total += (1 - eps) * (lse - row[y]) + eps * sum(lse - v for v in row) / len(row)
        return total / len(rows)

    terms = loss_terms(t(BASE), torch.tensor(LABELS), twin_logits=t(TWIN), method="tna",
                       alpha=0.5, label_smoothing=eps)
    assert terms["ce_base"].item() == pytest.approx(smoothed(BASE, LABELS), rel=1e-12)
    assert terms["ce_twin"].item() == pytest.approx(smoothed(TWIN, LABELS), rel=1e-12)
    assert terms["mse"].item() == pytest.approx(mse_by_hand(BASE, TWIN), rel=1e-12)
