"""Data: IDX / CIFAR / CIFAR10-DVS / npz / scikit-learn data sets, splits, augmentation,
encoding, batching.

    cfg = DataConfig(dataset="fashion-mnist", timesteps=5)
    data = load_data(cfg, batch_size=128)
    for x, y in data.train.batches(epoch):   # x: float32 (N, 1, 28, 28, T), y: int64 (N,)
        ...
"""
from tna.data.cifar import read_cifar
from tna.data.datasets import DATASETS, RawData, default_data_dir, load_dataset
from tna.data.dvs import bin_events, read_aedat, read_cifar10_dvs
from tna.data.idx import read_idx, read_idx_dir, write_idx
from tna.data.pipeline import (ENCODINGS, BatchLoader, DataConfig, DataSplits, augment_batch,
                               encode, encode_events, keyed_generator, load_data,
                               quantize_input, split_indices)

__all__ = [
    "DATASETS", "ENCODINGS", "BatchLoader", "DataConfig", "DataSplits", "RawData",
    "augment_batch", "bin_events", "default_data_dir", "encode", "encode_events",
    "keyed_generator", "load_data", "load_dataset", "quantize_input", "read_aedat",
    "read_cifar", "read_cifar10_dvs", "read_idx", "read_idx_dir", "split_indices",
    "write_idx",
]
