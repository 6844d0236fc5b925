"""CIFAR10-DVS: AEDAT 2.0 event files, binned into T frames of event counts.

Layout as distributed (one zip per class, unzipped): `<class>/cifar10_<class>_<i>.aedat`,
i = 0..999, for the ten CIFAR-10 classes. Each file is jAER's AEDAT 2.0: header lines that
start with '#' (the first `#!AER-DAT2.0`), then 8-byte records, each a big-endian uint32
address and a big-endian uint32 timestamp in microseconds.

Address bits of the DVS128 sensor, and the orientation, exactly as the published loaders
(SpikingJelly `cifar10_dvs.py`, tonic's AEDAT reader before its aedat4 re-pack) read them:

    raw_x = (address & 0x00FE) >> 1      bits 7..1
    raw_y = (address & 0x7F00) >> 8      bits 14..8
    raw_p =  address & 0x0001            bit 0
    x = 127 - raw_y,  y = 127 - raw_x,  p = 1 - raw_p

Frames: `frames[p, y, x, k]` counts the events of polarity p at pixel (x, y) in bin k (uint8,
saturating at 255). Bins are equal-event (SpikingJelly's split_by='number'): with N events and
T bins, bins 0..T-2 hold N // T events each in file order and the last bin the rest (all N when
N < T). `bin_events(..., binning='time')` gives equal-time bins instead. A smaller `size`
sums blocks of 128 // size pixels (the address shifted right).

Split: the first tenth of each class by file index is the test set (files 0..99 of 1000, the
split of Duan et al.'s TEBN that SpikingJelly calls CIFAR10DVSTEBNSplit), the rest train.
"""
import re
from pathlib import Path

import numpy as np

from tna.errors import TnaError

SENSOR_SIZE = 128  # DVS128: 128 x 128 pixels
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")
RECORD = np.dtype([("address", ">u4"), ("t", ">u4")])  # one AEDAT 2.0 event, 8 bytes
X_MASK, X_SHIFT = 0x00FE, 1
Y_MASK, Y_SHIFT = 0x7F00, 8
P_MASK = 0x0001
BINNINGS = ("events", "time")
TEST_FRACTION = 10  # 1 in 10 files of each class, the first by index, is a test file
HOMEPAGE = "https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671"
# Sub-folders where copies keep the class folders: unzipped in place, or SpikingJelly's root.
SUBDIRS = (".", "extract")


def read_aedat(path) -> dict:
    """Events of one CIFAR10-DVS AEDAT 2.0 file: {'t' (us), 'x', 'y', 'p'} int64 arrays.

    Coordinates and polarity in the published convention (module docstring). Raises `TnaError`
    on a missing, truncated or non-2.0 file.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise TnaError(f"{path} cannot be read ({e.strerror}); check the CIFAR10-DVS copy") \
            from None
    start = _header_end(data, path)
    if (len(data) - start) % RECORD.itemsize:
        raise TnaError(f"{path} is truncated ({len(data) - start} bytes of events, not a "
                       f"multiple of {RECORD.itemsize}); unzip the class again")
    rec = np.frombuffer(data, dtype=RECORD, offset=start)
    address = rec["address"].astype(np.int64)
    raw_x = (address & X_MASK) >> X_SHIFT
    raw_y = (address & Y_MASK) >> Y_SHIFT
    raw_p = address & P_MASK
    return {"t": rec["t"].astype(np.int64), "x": SENSOR_SIZE - 1 - raw_y,
            "y": SENSOR_SIZE - 1 - raw_x, "p": 1 - raw_p}


def _header_end(data: bytes, path: Path) -> int:
    """Offset of the first event: after every line that starts with '#'."""
    pos = 0
    while data[pos:pos + 1] == b"#":
        end = data.find(b"\n", pos)
        if end < 0:
            raise TnaError(f"{path} is truncated inside its header; unzip the class again")
        line = data[pos:end].strip()
        if pos == 0 and line.startswith(b"#!AER-DAT") and not line[9:].startswith(b"2."):
            version = line[9:].decode("ascii", "replace")
            raise TnaError(f"{path} is AEDAT {version}; only AEDAT 2.0, the format CIFAR10-DVS "
                           f"is distributed in, is read: use the original files from "
                           f"{HOMEPAGE}")
        pos = end + 1
    return pos


def bin_events(events: dict, timesteps: int, size: int = SENSOR_SIZE,
               binning: str = "events") -> np.ndarray:
    """Event counts uint8 (2, size, size, timesteps): [p, y, x, bin], saturating at 255.

    binning 'events': bins 0..T-2 hold N // T events each, in file order, the last the rest.
    binning 'time': bin k holds t0 + k*D/T <= t < t0 + (k+1)*D/T, D = t_last - t0 (first and
    last event in file order), the last bin also t >= t_last; events before t0 go to bin 0.
    Either way all events go to the last bin when the bins would be empty (N < T, or D = 0).
    """
    if binning not in BINNINGS:
        raise TnaError(f"binning={binning!r}: choose one of {', '.join(BINNINGS)}")
    if size < 1 or SENSOR_SIZE % size:
        raise TnaError(f"size={size}: must divide {SENSOR_SIZE}")
    t = events["t"]
    n, shrink = len(t), SENSOR_SIZE // size
    if binning == "events":
        per_bin = n // timesteps
        k = np.arange(n) // per_bin if per_bin else np.full(n, timesteps - 1)
    else:
        span = int(t[-1] - t[0]) if n else 0
        k = (t - t[0]) * timesteps // span if span > 0 else np.full(n, timesteps - 1)
    k = np.clip(k, 0, timesteps - 1)
    flat = ((events["p"] * size + events["y"] // shrink) * size + events["x"] // shrink) \
        * timesteps + k
    counts = np.bincount(flat, minlength=2 * size * size * timesteps)
    return np.minimum(counts, 255).astype(np.uint8).reshape(2, size, size, timesteps)


def find_class_files(data_dir) -> dict:
    """{class name: [AEDAT paths sorted by sample index]} of a CIFAR10-DVS copy at `data_dir`."""
    d = Path(data_dir)
    root = next((d / s for s in SUBDIRS if (d / s / CLASSES[0]).is_dir()), None)
    if root is None:
        raise TnaError(f"CIFAR10-DVS not found in {d}: unzip the ten class zips "
                       f"({CLASSES[0]}.zip ... {CLASSES[-1]}.zip, from {HOMEPAGE}) there, so "
                       f"that {d / CLASSES[0] / 'cifar10_airplane_0.aedat'} exists, "
                       f"or pass --data-dir")
    files = {c: sorted((root / c).glob("*.aedat"), key=_sample_index) for c in CLASSES}
    empty = [c for c, paths in files.items() if not paths]
    if empty:
        raise TnaError(f"CIFAR10-DVS in {root} has no .aedat files for {', '.join(empty)}: "
                       f"unzip {empty[0]}.zip (from {HOMEPAGE}) there too")
    return files


def _sample_index(path: Path):
    m = re.search(r"(\d+)\.aedat$", path.name)
    return (int(m[1]) if m else -1, path.name)


def read_cifar10_dvs(data_dir, timesteps: int, size: int = SENSOR_SIZE,
                     binning: str = "events") -> dict:
    """All of CIFAR10-DVS as frames: {'x_train', 'y_train', 'x_test', 'y_test', 'source'}.

    x: uint8 (N, 2, size, size, timesteps) event counts; y: int64 class indices in CLASSES
    order. The split is the TEBN one (module docstring).
    """
    files = find_class_files(data_dir)
    picked = {"train": [], "test": []}
    for label, c in enumerate(CLASSES):
        n_test = max(1, len(files[c]) // TEST_FRACTION)
        picked["test"] += [(p, label) for p in files[c][:n_test]]
        picked["train"] += [(p, label) for p in files[c][n_test:]]
    out = {"source": str(files[CLASSES[0]][0].parent.parent)}
    for split, items in picked.items():
        x = np.zeros((len(items), 2, size, size, timesteps), np.uint8)
        for i, (path, _) in enumerate(items):
            x[i] = bin_events(read_aedat(path), timesteps, size, binning)
        out[f"x_{split}"] = x
        out[f"y_{split}"] = np.array([label for _, label in items], np.int64)
    return out
