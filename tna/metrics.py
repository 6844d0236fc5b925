"""Accuracy and its breakdown, one place for train, export and deploy.

    correct(logits, labels)             top-1 hits of a batch
    evaluate(model, loader, ...)        (hits, samples) of a model over a data loader's batches
    percent(hits, samples)              accuracy in %
    at_chance(acc, classes)             within CHANCE_MARGIN points of chance
    confusion(pred, labels, classes)    (classes, classes) counts: row = true, column = predicted
    per_class(confusion)                accuracy (%) of each true class

Imports torch only inside `evaluate`.
"""
from __future__ import annotations

import sys

import numpy as np

CHANCE_MARGIN = 5.0     # points above chance that still count as "at chance"


def correct(logits, labels) -> int:
    return int((logits.argmax(1) == labels).sum())


def percent(hits: float, samples: float) -> float:
    return 100.0 * hits / max(samples, 1)


def evaluate(model, loader, device="cpu", progress: bool = False, desc: str = "eval",
             shard=None) -> tuple[int, int]:
    """(top-1 hits, samples) of `model` over every batch of `loader` (its part `shard` =
    (rank, world) only, for data-parallel runs)."""
    import torch
    from tqdm import tqdm

    from tna.console import progress_enabled
    model.eval()
    hits = total = 0
    with torch.no_grad():
        for x, y in tqdm(loader.batches(0, shard=shard or (0, 1)), total=len(loader), desc=desc,
                         leave=False, disable=not progress_enabled(progress), file=sys.stderr):
            if len(y) == 0:        # this process's part of a batch smaller than the world
                continue
            hits += correct(model(x.to(device)).cpu(), y)
            total += len(y)
    return hits, total


def at_chance(acc: float, num_classes: int) -> bool:
    """Whether `acc` (%) is within CHANCE_MARGIN points of chance (100 / classes)."""
    return acc <= 100.0 / num_classes + CHANCE_MARGIN


def confusion(pred, labels, num_classes: int) -> np.ndarray:
    """(classes, classes) counts: row = the true class, column = the predicted one."""
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(labels, np.int64), np.asarray(pred, np.int64)), 1)
    return m


def per_class(matrix: np.ndarray) -> np.ndarray:
    """Accuracy (%) of each true class; NaN for a class without samples."""
    rows = matrix.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rows > 0, 100.0 * np.diag(matrix) / rows, np.nan)
