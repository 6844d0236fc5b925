"""Training stage: `train(TrainConfig) -> Path` of best.pt.

Kept import-light: torch and lava-dl load only when `train` runs.
"""
from tna.train.config import TrainConfig


def train(cfg: TrainConfig):
    """Train per `cfg`; write the run folder; return the path of best.pt."""
    from tna.train.loop import train as _train
    return _train(cfg)


__all__ = ["TrainConfig", "train"]
