"""Training stage: `train(TrainConfig) -> Path` of best.pt."""
from tna.train.config import TrainConfig
from tna.train.loop import evaluate, loss_terms, train

__all__ = ["TrainConfig", "train", "evaluate", "loss_terms"]
