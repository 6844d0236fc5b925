"""CIFAR-10 and CIFAR-100 in the "python version" layout, read without running pickled code.

The python version of CIFAR (cifar-10-python.tar.gz, cifar-100-python.tar.gz) holds Python 2
pickles (protocol 2), one per batch: a dict with bytes keys, `data` a uint8 ndarray (N, 3072)
whose rows are 1024 red, 1024 green, 1024 blue pixels (each 32 x 32, row-major), and the labels
as a list of ints (`labels`; CIFAR-100: `fine_labels` and `coarse_labels`). The class names are
in `batches.meta` (`label_names`) or `meta` (`fine_label_names`, `coarse_label_names`).

Unpickling is how those files are meant to be read, and unpickling can run any code. Here a
restricted unpickler builds only what the real files contain: the numpy array reconstructor,
`numpy.ndarray` and `numpy.dtype`, besides the plain containers that need no global. A pickle
that asks for anything else (`os.system`, `builtins.eval`, ...) is refused before it is called,
with a one-line `TnaError` naming the file and the refused global.
"""
import io
import pickle
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tna.errors import TnaError

IMAGE_SHAPE = (3, 32, 32)  # channel-major, as the rows of `data` are stored
PIXELS = 3 * 32 * 32
HOMEPAGE = "https://www.cs.toronto.edu/~kriz/cifar.html"


@dataclass(frozen=True)
class CifarLayout:
    """Where one CIFAR variant keeps its batches, and which keys hold labels and names."""

    title: str  # as users call it, for messages
    folder: str  # the folder inside the tarball
    tarball: str  # the file name it is distributed as
    train: tuple  # batch files of the train split
    test: tuple  # batch files of the test split
    meta: str  # the file with the class names
    label_key: bytes  # per-batch list of labels
    names_key: bytes  # key of the class names in `meta`
    num_classes: int


_CIFAR10_FILES = dict(folder="cifar-10-batches-py", tarball="cifar-10-python.tar.gz",
                      train=tuple(f"data_batch_{i}" for i in range(1, 6)), test=("test_batch",),
                      meta="batches.meta")
_CIFAR100_FILES = dict(folder="cifar-100-python", tarball="cifar-100-python.tar.gz",
                       train=("train",), test=("test",), meta="meta")
LAYOUTS = {
    "cifar10": CifarLayout("CIFAR-10", **_CIFAR10_FILES, label_key=b"labels",
                           names_key=b"label_names", num_classes=10),
    "cifar100": CifarLayout("CIFAR-100", **_CIFAR100_FILES, label_key=b"fine_labels",
                            names_key=b"fine_label_names", num_classes=100),
    "cifar100-coarse": CifarLayout("CIFAR-100 (coarse labels)", **_CIFAR100_FILES,
                                   label_key=b"coarse_labels", names_key=b"coarse_label_names",
                                   num_classes=20),
}

# (module, name) -> the object it may build. `_reconstruct` is taken from ndarray's own pickle
# recipe, so it is the right function whichever module path this numpy version keeps it under;
# both paths are accepted because numpy 1 writes numpy.core and numpy 2 numpy._core.
_RECONSTRUCT = np.empty(0).__reduce__()[0]
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class RefusedGlobal(Exception):
    """A pickle asked for a global outside ALLOWED_GLOBALS."""


class _CifarUnpickler(pickle.Unpickler):
    """Resolves only ALLOWED_GLOBALS; every other global (hence every other call) is refused.

    find_class is the only way a pickle reaches code: GLOBAL, STACK_GLOBAL, INST, OBJ and the
    EXT opcodes all go through it, and persistent ids are refused by the base class.
    """

    def find_class(self, module, name):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedGlobal(f"{module}.{name}") from None


def unpickle_cifar(data: bytes, where: str):
    """Unpickle one CIFAR batch or meta file (bytes) with the restricted unpickler.

    Strings come back as bytes (`encoding='bytes'`, as the Python 2 files need). `where` names
    the file in errors.
    """
    try:
        return _CifarUnpickler(io.BytesIO(data), encoding="bytes").load()
    except RefusedGlobal as e:
        raise TnaError(f"{where}: refused to unpickle: it asks for {e}, which CIFAR files never "
                       f"use (only numpy arrays, lists and strings); replace it with a genuine "
                       f"copy") from None
    except Exception as e:  # noqa: BLE001 - any failure of a foreign file is the file's fault
        raise TnaError(f"{where} is not a readable CIFAR pickle ({type(e).__name__}: {e}); "
                       f"replace it with a genuine copy") from None


def find_cifar(data_dir, layout: CifarLayout) -> Path:
    """The tarball or extracted folder of `layout` at `data_dir`.

    `data_dir` may be the tarball itself, the extracted folder itself, or a folder holding
    either. Raises `TnaError` saying where to put which files when none is there.
    """
    d = Path(data_dir)
    for path in (d / layout.folder, d, d / layout.tarball):
        if path.is_dir() and (path / layout.test[0]).is_file():
            return path
        if path.is_file():  # the tarball, whatever its name
            return path
    raise TnaError(f"{layout.title} not found in {d}: put {layout.tarball} (from {HOMEPAGE}) "
                   f"there or its extracted {layout.folder}/ folder "
                   f"({', '.join(layout.train + layout.test + (layout.meta,))}), "
                   f"or pass --data-dir")


def _read_members(source: Path, layout: CifarLayout) -> dict:
    """{file name: bytes} of every batch and the meta file, from a folder or a tarball."""
    names = layout.train + layout.test + (layout.meta,)
    if source.is_dir():
        missing = [n for n in names if not (source / n).is_file()]
        if missing:
            raise TnaError(f"{source} lacks {', '.join(missing)}: it needs all of "
                           f"{', '.join(names)}; re-extract {layout.tarball}")
        return {n: (source / n).read_bytes() for n in names}
    wanted = {f"{layout.folder}/{n}": n for n in names}
    out = {}
    try:
        with tarfile.open(source, "r:*") as tar:
            for member in tar:  # one pass: a .tar.gz has no index to jump through
                if member.isfile() and member.name in wanted:
                    out[wanted[member.name]] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise TnaError(f"{source} is not a readable tarball ({e}); download {layout.tarball} "
                       f"again from {HOMEPAGE}") from None
    missing = [f"{layout.folder}/{n}" for n in names if n not in out]
    if missing:
        raise TnaError(f"{source} lacks {', '.join(missing)}; download {layout.tarball} again "
                       f"from {HOMEPAGE}")
    return out


def _batch(blob: bytes, where: str, layout: CifarLayout):
    """(images uint8 (N, 3, 32, 32), labels int64 (N,)) of one batch file."""
    d = unpickle_cifar(blob, where)
    if not isinstance(d, dict) or b"data" not in d or layout.label_key not in d:
        keys = sorted(d) if isinstance(d, dict) else type(d).__name__
        raise TnaError(f"{where}: expected a dict with b'data' and {layout.label_key!r}, got "
                       f"{keys}; replace it with a genuine copy")
    x, y = d[b"data"], d[layout.label_key]
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 \
            or x.shape[1] != PIXELS:
        got = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
        raise TnaError(f"{where}: data must be uint8 (N, {PIXELS}), got {got}")
    try:
        y = np.asarray(y, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise TnaError(f"{where}: {layout.label_key!r} must be a list of integers") from None
    if y.shape != (len(x),):
        raise TnaError(f"{where}: {len(x)} images but labels of shape {y.shape}")
    if len(y) and (y.min() < 0 or y.max() >= layout.num_classes):
        raise TnaError(f"{where}: labels must lie in 0..{layout.num_classes - 1}, got "
                       f"{y.min()}..{y.max()}")
    return x.reshape(-1, *IMAGE_SHAPE), y


def _class_names(blob: bytes, where: str, layout: CifarLayout) -> tuple:
    d = unpickle_cifar(blob, where)
    names = d.get(layout.names_key) if isinstance(d, dict) else None
    if not isinstance(names, list) or len(names) != layout.num_classes \
            or not all(isinstance(n, (bytes, str)) for n in names):
        raise TnaError(f"{where}: expected {layout.names_key!r}, a list of "
                       f"{layout.num_classes} names; replace it with a genuine copy")
    return tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names)


def read_cifar(data_dir, name: str = "cifar10") -> dict:
    """Read CIFAR `name` ('cifar10', 'cifar100', 'cifar100-coarse') from `data_dir`.

    Returns {'x_train', 'y_train', 'x_test', 'y_test', 'class_names', 'source'}: x uint8
    (N, 3, 32, 32), y int64 (N,). Raises `TnaError` when files are missing, corrupt, or try to
    run code.
    """
    layout = LAYOUTS[name]
    source = find_cifar(data_dir, layout)
    blobs = _read_members(source, layout)
    out = {"class_names": _class_names(blobs[layout.meta], _where(source, layout, layout.meta),
                                       layout),
           "source": str(source)}
    for split in ("train", "test"):
        parts = [_batch(blobs[f], _where(source, layout, f), layout)
                 for f in getattr(layout, split)]
        out[f"x_{split}"] = np.concatenate([x for x, _ in parts])
        out[f"y_{split}"] = np.concatenate([y for _, y in parts])
    return out


def _where(source: Path, layout: CifarLayout, member: str) -> str:
    """How errors name a file: its path, or tarball:member."""
    return str(source / member) if source.is_dir() else f"{source}:{layout.folder}/{member}"
