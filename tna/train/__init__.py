"""Training stage: `train(TrainConfig) -> Path` of best.pt.

Kept import-light: torch and lava-dl load only when `train` runs.
"""
from tna.train.config import TrainConfig


def train(cfg: TrainConfig, on_epoch=None):
    """Train per `cfg`; write the run folder; return the path of best.pt.

    `on_epoch(model, row)` is called after every epoch with the base and its metrics."""
    from tna.train.loop import train as _train
    return _train(cfg, on_epoch)


__all__ = ["TrainConfig", "train"]
