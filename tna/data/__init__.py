"""Data: IDX / npz / scikit-learn data sets, splits, augmentation, encoding, batching.

    cfg = DataConfig(dataset="fashion-mnist", timesteps=5)
    data = load_data(cfg, batch_size=128)
    for x, y in data.train.batches(epoch):   # x: float32 (N, 1, 28, 28, T), y: int64 (N,)
        ...
"""
from tna.data.datasets import DATASETS, RawData, load_dataset
from tna.data.idx import read_idx, read_idx_dir, write_idx
from tna.data.pipeline import (ENCODINGS, BatchLoader, DataConfig, DataSplits, augment_batch,
                               encode, keyed_generator, load_data, quantize_input,
                               split_indices)

__all__ = [
    "DATASETS", "ENCODINGS", "BatchLoader", "DataConfig", "DataSplits", "RawData",
    "augment_batch", "encode", "keyed_generator", "load_data", "load_dataset",
    "quantize_input", "read_idx", "read_idx_dir", "split_indices", "write_idx",
]
