"""Splits, augmentation, encoding and batching, all on in-memory uint8 tensors.

Encodings make the time dimension in slayer layout: (N, C, H, W, T), or (N, C*H*W, T) with
`flatten`. `direct` feeds the quantised image, integers 0..2**input_bits-1, at every step (graded
spikes on Loihi); `rate` feeds Bernoulli spikes with probability pixel/255. Event data sets
(N, C, H, W, T) already have their time dimension: `direct` feeds each bin's event count,
clipped at 2**input_bits-1, and `rate` a spike wherever a bin has an event.

Randomness is keyed, not sequential: a batch's shuffle order, crops, flips and rate spikes
depend only on (seed, split, epoch, batch index), so a run resumed at any batch sees exactly the
batches an uninterrupted run would have seen.
"""
import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from tna.data.datasets import DATASETS, RawData, load_dataset
from tna.errors import TnaError

ENCODINGS = ("direct", "rate")
MAX_INPUT_BITS = 8  # pixels are 8-bit: more levels than that would only repeat values
SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
# Independent random streams per purpose, mixed into the seed.
_STREAM_SPLIT, _STREAM_ORDER, _STREAM_BATCH = 0, 1, 2


@dataclass(frozen=True)
class DataConfig:
    """What data to feed and how to encode it; `__post_init__` names any bad value."""

    dataset: str = "fashion-mnist"  # one of DATASETS (datasets.py), or npz:PATH
    data_dir: str | None = None  # the data set's folder (or tarball, .npz); None = default
    val_size: float = 0.1  # held out of train: fraction in (0, 1), a count >= 1, or 0 = none
    limit: int | None = None  # cap every split at this many samples (seeded pick); fast runs
    train_limit: int | None = None  # cap the train split only (evaluate on full val/test)
    augment: bool = True  # pad + random crop (+ h-flip where the data set allows) on train
    crop_padding: int = 4  # pixels of zero padding before the random crop (the paper's 4)
    encoding: str = "direct"  # direct (graded integers each step) | rate (Bernoulli spikes)
    input_bits: int = 4  # direct encoding: pixels quantised to 0..2**input_bits-1
    timesteps: int = 5  # T, the length of every sample's time dimension
    flatten: bool = False  # (N, C*H*W, T) for dense nets instead of (N, C, H, W, T)
    seed: int = 0  # keys the val split, shuffles, augmentation and rate spikes

    def __post_init__(self):
        if not isinstance(self.dataset, str) or not (
                self.dataset in DATASETS or self.dataset.startswith("npz:")):
            raise TnaError(f"dataset = {self.dataset!r}: choose one of "
                           f"{', '.join(DATASETS)} or npz:PATH")
        if self.data_dir is not None:
            if not isinstance(self.data_dir, str) and not hasattr(self.data_dir, "__fspath__"):
                raise TnaError(f"data_dir = {self.data_dir!r}: must be a path or null")
            object.__setattr__(self, "data_dir", str(self.data_dir))
        v = self.val_size
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0 \
                or (v >= 1 and v != int(v)):
            raise TnaError(f"val_size = {v!r}: use a fraction in (0, 1), a whole count "
                           f">= 1, or 0 for no validation split")
        _check_int("limit", self.limit, 1, allow_none=True)
        _check_int("train_limit", self.train_limit, 1, allow_none=True)
        _check_bool("augment", self.augment)
        _check_int("crop_padding", self.crop_padding, 0)
        if self.encoding not in ENCODINGS:
            raise TnaError(f"encoding = {self.encoding!r}: choose one of "
                           f"{', '.join(ENCODINGS)}")
        _check_int("input_bits", self.input_bits, 1, MAX_INPUT_BITS)
        _check_int("timesteps", self.timesteps, 1)
        _check_bool("flatten", self.flatten)
        _check_int("seed", self.seed, 0)

    @property
    def input_max(self) -> int:
        """Largest input value the net sees: 2**input_bits-1 (direct) or 1 (rate spikes)."""
        return 2 ** self.input_bits - 1 if self.encoding == "direct" else 1

    def to_dict(self) -> dict:
        """Plain dict (for checkpoints and exported metadata)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DataConfig":
        """Inverse of `to_dict`; unknown keys are errors."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise TnaError(f"data: unknown key(s) {', '.join(unknown)}; known: "
                           f"{', '.join(sorted(known))}")
        return cls(**d)


def _check_int(name, value, lo, hi=None, allow_none=False):
    from tna.config import check_int
    check_int(name, value, lo, hi, allow_none)


def _check_bool(name, value):
    if not isinstance(value, bool):
        raise TnaError(f"{name} = {value!r}: must be true or false")


def keyed_generator(*key: int) -> torch.Generator:
    """A torch.Generator whose seed is a hash of the integer tuple `key`."""
    state = np.random.SeedSequence([int(k) for k in key]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 31 | int(state[1]) >> 1)


def quantize_input(x_uint8: torch.Tensor, input_bits: int) -> torch.Tensor:
    """round(x / 255 * (2**input_bits - 1)) as float32: 0 -> 0, 255 -> 2**input_bits - 1.

    Exact: x * L / 255 is never within 1/510 of a half for integer x and odd 255, so float32
    rounding cannot flip a value.
    """
    if x_uint8.dtype != torch.uint8:
        raise TypeError(f"quantize_input expects uint8 pixels, got {x_uint8.dtype}")
    levels = 2 ** input_bits - 1
    return x_uint8.float().mul_(levels / 255).round_()


def augment_batch(x: torch.Tensor, generator: torch.Generator, padding: int = 4,
                  hflip: bool = False) -> torch.Tensor:
    """Zero-pad by `padding`, crop a random H x W window per sample, optionally flip left-right.

    x: uint8 (N, C, H, W), or (N, C, H, W, T) event frames (every frame of a sample gets the
    same crop and flip). Returns a new uint8 tensor of the same shape. Crop offsets are
    uniform in 0..2*padding per axis (a shift of -padding..+padding); each sample is flipped
    with probability 1/2 when `hflip`.
    """
    if x.ndim == 5:  # frames as extra channels: (N, C, H, W, T) -> (N, C*T, H, W) and back
        n, c, h, w, t = x.shape
        folded = x.permute(0, 1, 4, 2, 3).reshape(n, c * t, h, w)
        out = augment_batch(folded, generator, padding, hflip)
        return out.reshape(n, c, t, h, w).permute(0, 1, 3, 4, 2).contiguous()
    n, c, h, w = x.shape
    if padding > 0:
        span = 2 * padding + 1
        oy = torch.randint(0, span, (n, 1), generator=generator)
        ox = torch.randint(0, span, (n, 1), generator=generator)
        wp = w + 2 * padding  # padded row length
        xp = F.pad(x, (padding, padding, padding, padding)).reshape(n, c, -1)
        # Flat index of output pixel (i, j) in its padded image: (oy + i) * wp + ox + j.
        idx = ((oy + torch.arange(h)).unsqueeze(2) * wp
               + (ox + torch.arange(w)).unsqueeze(1)).reshape(n, 1, h * w)
        x = xp.gather(2, idx.expand(n, c, h * w)).reshape(n, c, h, w)
    if hflip:
        flip = torch.rand(n, generator=generator) < 0.5
        x = torch.where(flip.view(n, 1, 1, 1), x.flip(-1), x)
    return x.contiguous()


def encode(x: torch.Tensor, encoding: str, timesteps: int, input_bits: int = 4,
           flatten: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
    """Encode uint8 images (N, C, H, W) over time: float32 (N, C, H, W, T) or (N, C*H*W, T).

    direct: the quantised image (integers 0..2**input_bits-1) at every step.
    rate: spikes 0/1, each pixel firing with probability pixel/255 at each step.
    Event frames (N, C, H, W, T) go to `encode_events` instead.
    """
    if x.ndim == 5:
        return encode_events(x, encoding, timesteps, input_bits, flatten)
    if flatten:
        x = x.reshape(len(x), -1)
    if encoding == "direct":
        q = quantize_input(x, input_bits)
        return q.unsqueeze(-1).expand(*q.shape, timesteps).contiguous()
    if encoding == "rate":
        u = torch.rand(*x.shape, timesteps, generator=generator).mul_(255)
        return (u < x.unsqueeze(-1)).float()
    raise TnaError(f"encoding={encoding!r}: choose one of {', '.join(ENCODINGS)}")


def encode_events(x: torch.Tensor, encoding: str, timesteps: int, input_bits: int = 4,
                  flatten: bool = False) -> torch.Tensor:
    """Encode uint8 event counts (N, C, H, W, T): float32 (N, C, H, W, T) or (N, C*H*W, T).

    direct: each bin's count, clipped at 2**input_bits-1 (graded spikes, like direct images).
    rate: 1 wherever a bin has at least one event.
    """
    if x.shape[-1] != timesteps:
        raise TnaError(f"event data has {x.shape[-1]} time bins but timesteps={timesteps}; "
                       f"load it with the same timesteps")
    if flatten:
        x = x.reshape(len(x), -1, timesteps)
    if encoding == "direct":
        return x.clamp(max=2 ** input_bits - 1).float()
    if encoding == "rate":
        return (x > 0).float()
    raise TnaError(f"encoding={encoding!r}: choose one of {', '.join(ENCODINGS)}")


def shard_slice(n: int, rank: int, world: int) -> slice:
    """Process `rank`'s rows of a batch of `n` split over `world` processes: contiguous, in
    rank order, sizes differing by at most one (a part is empty only when n < world)."""
    return slice(n * rank // world, n * (rank + 1) // world)


class BatchLoader:
    """Yields (x_encoded float32, y int64) batches of one split.

    `batches(epoch, start)` is the whole interface: the train split is reshuffled and augmented
    per epoch, keyed by (seed, epoch, batch), so starting at batch `start` reproduces the tail
    of an uninterrupted epoch exactly. Evaluation splits keep file order and no augmentation.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, cfg: DataConfig,
                 batch_size: int, split: str, hflip: bool = False, drop_last: bool = False):
        if batch_size < 1:
            raise TnaError(f"batch_size = {batch_size}: must be a whole number ≥ 1")
        self.images, self.labels = images, labels
        self.cfg, self.batch_size, self.split = cfg, batch_size, split
        self.train = split == "train"
        self.augment = self.train and cfg.augment
        self.hflip = hflip
        self.drop_last = drop_last

    def __len__(self) -> int:
        """Number of batches per epoch."""
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_samples(self) -> int:
        """Number of samples in the split."""
        return len(self.labels)

    def batches(self, epoch: int = 0, start: int = 0, shard: tuple = (0, 1)):
        """Iterate over the batches of `epoch`, beginning at batch index `start`.

        `shard=(rank, world)`: only process `rank`'s part of each batch (`shard_slice`), for
        data-parallel training. The batch is drawn whole first, so the parts of all processes
        are exactly the batch of one process, augmentation and rate spikes included.
        """
        cfg, split_id = self.cfg, SPLIT_IDS[self.split]
        n = len(self.labels)
        if self.train:
            order = torch.randperm(n, generator=keyed_generator(cfg.seed, _STREAM_ORDER,
                                                                split_id, epoch))
        else:
            order = None
        for b in range(start, len(self)):
            sl = slice(b * self.batch_size, (b + 1) * self.batch_size)
            idx = order[sl] if order is not None else sl
            x, y = self.images[idx], self.labels[idx]
            g = keyed_generator(cfg.seed, _STREAM_BATCH, split_id, epoch, b)
            if self.augment:
                x = augment_batch(x, g, cfg.crop_padding, self.hflip)
            if shard[1] > 1:
                part = shard_slice(len(y), *shard)
                if cfg.encoding == "rate" and x.ndim == 4:   # spikes drawn for the whole batch
                    x = encode(x, cfg.encoding, cfg.timesteps, cfg.input_bits, cfg.flatten, g)
                    yield x[part], y[part]
                    continue
                x, y = x[part], y[part]        # other encodings are per pixel: encode the part
            yield encode(x, cfg.encoding, cfg.timesteps, cfg.input_bits, cfg.flatten, g), y

    def __iter__(self):
        return self.batches(0)


@dataclass(frozen=True)
class DataSplits:
    """The loaders of one run plus what a model needs to know about its input."""

    train: BatchLoader
    val: BatchLoader | None  # None when val_size == 0
    test: BatchLoader
    class_names: tuple
    image_shape: tuple  # (C, H, W) of the stored images
    hflip: bool  # whether training flips horizontally
    source: str  # where the data came from

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def sample_shape(self) -> tuple:
        """Shape of one encoded sample without T: (C, H, W), or (C*H*W,) when flattened."""
        c, h, w = self.image_shape
        return (c * h * w,) if self.train.cfg.flatten else (c, h, w)


def split_indices(n_train: int, n_test: int, cfg: DataConfig):
    """Seeded (train, val, test) index tensors; `limit` keeps the first N of a seeded shuffle.

    The validation set depends only on (seed, n_train, val_size), not on `limit`.
    """
    n_val = round(n_train * cfg.val_size) if cfg.val_size < 1 else int(cfg.val_size)
    if n_val >= n_train:
        raise TnaError(f"val_size = {cfg.val_size!r} leaves no training samples out of "
                       f"{n_train}; use a smaller value")
    perm = torch.randperm(n_train, generator=keyed_generator(cfg.seed, _STREAM_SPLIT, 0))
    val, train = perm[:n_val], perm[n_val:]
    test = torch.arange(n_test)
    if cfg.limit is not None:
        train = train[:cfg.limit]
        val = val[:cfg.limit]
        if cfg.limit < n_test:
            pick = torch.randperm(n_test, generator=keyed_generator(cfg.seed, _STREAM_SPLIT, 2))
            test = pick[:cfg.limit]
    if cfg.train_limit is not None:
        train = train[:cfg.train_limit]
    return train.sort().values, val.sort().values, test.sort().values


def load_data(cfg: DataConfig, batch_size: int = 128, eval_batch_size: int | None = None,
              raw: RawData | None = None) -> DataSplits:
    """Load `cfg.dataset` (or use `raw`) and build train / val / test loaders."""
    raw = raw if raw is not None else load_dataset(cfg.dataset, cfg.data_dir, cfg.timesteps)
    if raw.timesteps is not None and raw.timesteps != cfg.timesteps:
        raise TnaError(f"{raw.source}: events were binned into {raw.timesteps} frames but "
                       f"data.timesteps is {cfg.timesteps}; bin them with the same T")
    _, h, w = raw.sample_shape
    if cfg.augment and h == 1 and w == 1:
        raise TnaError(f"{raw.source}: augment needs images, but samples are flat "
                       f"{raw.sample_shape}; set data.augment false (--no-augment)")
    train_idx, val_idx, test_idx = split_indices(len(raw.x_train), len(raw.x_test), cfg)
    eval_bs = eval_batch_size or batch_size

    def make(x, y, idx, split, bs):
        return BatchLoader(x[idx].contiguous(), y[idx].contiguous(), cfg, bs, split,
                           hflip=raw.hflip)

    return DataSplits(
        train=make(raw.x_train, raw.y_train, train_idx, "train", batch_size),
        val=make(raw.x_train, raw.y_train, val_idx, "val", eval_bs) if len(val_idx) else None,
        test=make(raw.x_test, raw.y_test, test_idx, "test", eval_bs),
        class_names=raw.class_names, image_shape=raw.sample_shape, hflip=raw.hflip,
        source=raw.source)
