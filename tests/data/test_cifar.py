"""CIFAR-10/100 readers on tiny files in the real layout; malicious pickles never run.

The batches are written as Python 2's cPickle writes them at protocol 2 (the real files are
Python 2 pickles): str values as SHORT_BINSTRING/BINSTRING, numpy arrays through
numpy.core.multiarray._reconstruct, ndarray and dtype, in gzipped tarballs with the real paths.
"""
import io
import os
import pickle
import pickletools
import struct
import tarfile

import numpy as np
import pytest
import torch

from tna.data import DataConfig, load_data, load_dataset
from tna.data.cifar import read_cifar, unpickle_cifar
from tna.errors import TnaError

CIFAR10_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog",
                 b"horse", b"ship", b"truck"]


# --- a Python 2 cPickle (protocol 2) writer, just what the CIFAR files use -------------------

def _py2(obj) -> bytes:
    if obj is None:
        return b"N"
    if obj is False:
        return b"\x89"  # NEWFALSE
    if isinstance(obj, int):
        if 0 <= obj < 256:
            return b"K" + bytes([obj])
        if 0 <= obj < 65536:
            return b"M" + struct.pack("<H", obj)
        return b"J" + struct.pack("<i", obj)
    if isinstance(obj, bytes):  # a Python 2 str
        if len(obj) < 256:
            return b"U" + bytes([len(obj)]) + obj
        return b"T" + struct.pack("<i", len(obj)) + obj
    if isinstance(obj, tuple):
        body = b"".join(_py2(o) for o in obj)
        return body + {1: b"\x85", 2: b"\x86", 3: b"\x87"}[len(obj)] if 1 <= len(obj) <= 3 \
            else b"(" + body + b"t"
    if isinstance(obj, list):
        return b"](" + b"".join(_py2(o) for o in obj) + b"e"
    if isinstance(obj, dict):
        return b"}(" + b"".join(_py2(k) + _py2(v) for k, v in obj.items()) + b"u"
    if isinstance(obj, np.ndarray):
        assert obj.dtype == np.uint8
        dtype = (b"cnumpy\ndtype\n" + _py2((b"u1", 0, 1)) + b"R"
                 + _py2((3, b"|", None, None, None, -1, -1, 0)) + b"b")
        return (b"cnumpy.core.multiarray\n_reconstruct\n"
                + _py2((_Global(b"numpy\nndarray\n"), (0,), b"b")) + b"R"
                + b"(" + _py2(1) + _py2(obj.shape) + dtype + _py2(False)
                + _py2(obj.tobytes()) + b"tb")
    if isinstance(obj, _Global):
        return b"c" + obj.ref
    raise TypeError(type(obj))


class _Global:
    def __init__(self, ref):
        self.ref = ref


def py2_pickle(obj) -> bytes:
    return b"\x80\x02" + _py2(obj) + b"."


def _batch(rng, n, label_key=b"labels", n_classes=10, extra=None):
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, n_classes, n)]
    d = {b"data": data, label_key: labels, b"batch_label": b"training batch 1 of 5",
         b"filenames": [b"img_%d.png" % i for i in range(n)], **(extra or {})}
    return d, data, labels


def write_cifar10(root, rng, fmt="tar.gz", n_train=2, n_test=3):
    """CIFAR-10 as distributed; returns (path, train data, train labels, test data, labels)."""
    files, xs, ys = {}, [], []
    for i in range(1, 6):
        d, x, y = _batch(rng, n_train)
        files[f"data_batch_{i}"] = py2_pickle(d)
        xs.append(x)
        ys += y
    d, xt, yt = _batch(rng, n_test)
    files["test_batch"] = py2_pickle(d)
    files["batches.meta"] = py2_pickle({b"num_cases_per_batch": 10000,
                                        b"label_names": CIFAR10_NAMES, b"num_vis": 3072})
    path = _write(root, "cifar-10-batches-py", "cifar-10-python.tar.gz", files, fmt)
    return path, np.concatenate(xs), ys, xt, yt


def write_cifar100(root, rng, fmt="tar.gz"):
    out = {}
    files = {}
    for split, n in (("train", 4), ("test", 2)):
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        fine = [int(v) for v in rng.integers(0, 100, n)]
        coarse = [int(v) for v in rng.integers(0, 20, n)]
        files[split] = py2_pickle({b"filenames": [b"f"] * n, b"batch_label": b"b",
                                   b"fine_labels": fine, b"coarse_labels": coarse,
                                   b"data": data})
        out[split] = (data, fine, coarse)
    files["meta"] = py2_pickle({b"fine_label_names": [b"fine%d" % i for i in range(100)],
                                b"coarse_label_names": [b"coarse%d" % i for i in range(20)]})
    return _write(root, "cifar-100-python", "cifar-100-python.tar.gz", files, fmt), out


def _write(root, folder, tarball, files, fmt):
    if fmt == "folder":
        (root / folder).mkdir(parents=True)
        for name, blob in files.items():
            (root / folder / name).write_bytes(blob)
        return root / folder
    path = root / tarball
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(folder)
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        for name, blob in {"readme.html": b"<html></html>", **files}.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return path


# --- tests -----------------------------------------------------------------------------------

def test_writer_is_python2_protocol_2():
    blob = py2_pickle({b"data": np.arange(6, dtype=np.uint8).reshape(2, 3), b"labels": [1, 2]})
    ops = {op.name for op, _, _ in pickletools.genops(blob)}
    assert "PROTO" in ops and "SHORT_BINSTRING" in ops and "GLOBAL" in ops
    assert not ops & {"BINUNICODE", "SHORT_BINBYTES", "BINBYTES"}  # no Python 3 types
    ours = unpickle_cifar(blob, "x")
    ref = pickle.loads(blob, encoding="bytes")  # noqa: S301 - our own bytes, for comparison
    assert ours.keys() == ref.keys() and ours[b"labels"] == ref[b"labels"] == [1, 2]
    assert np.array_equal(ours[b"data"], ref[b"data"]) and ours[b"data"].dtype == np.uint8


def test_cifar10_tarball(tmp_path):
    path, x, y, xt, yt = write_cifar10(tmp_path, np.random.default_rng(0))
    raw = load_dataset("cifar10", tmp_path)  # a folder holding the tarball
    assert raw.x_train.shape == (10, 3, 32, 32) and raw.x_test.shape == (3, 3, 32, 32)
    assert raw.x_train.dtype == torch.uint8 and raw.y_train.dtype == torch.int64
    assert raw.y_train.tolist() == y and raw.y_test.tolist() == yt
    # Rows are channel-major: 1024 red, 1024 green, 1024 blue, each 32 x 32 row-major.
    assert raw.x_train[3, 0, 0, 1] == x[3, 1] and raw.x_train[3, 1, 0, 0] == x[3, 1024]
    assert raw.x_train[3, 2, 31, 31] == x[3, 3071] and raw.x_train[3, 0, 1, 0] == x[3, 32]
    assert np.array_equal(raw.x_test.numpy().reshape(3, -1), xt)
    assert raw.class_names[0] == "airplane" and raw.num_classes == 10 and raw.hflip
    assert torch.equal(load_dataset("cifar10", path).x_train, raw.x_train)  # the tarball itself


def test_cifar10_extracted_folder(tmp_path):
    folder, x, y, _, _ = write_cifar10(tmp_path, np.random.default_rng(1), fmt="folder")
    for where in (tmp_path, folder):  # its parent, or cifar-10-batches-py/ itself
        arrays = read_cifar(where, "cifar10")
        assert np.array_equal(arrays["x_train"].reshape(10, -1), x)
        assert arrays["y_train"].tolist() == y


def test_cifar100_fine_by_default_and_coarse(tmp_path):
    _, out = write_cifar100(tmp_path, np.random.default_rng(2))
    fine = load_dataset("cifar100", tmp_path)
    assert fine.num_classes == 100 and fine.class_names[7] == "fine7"
    assert fine.y_train.tolist() == out["train"][1] and fine.y_test.tolist() == out["test"][1]
    assert np.array_equal(fine.x_test.numpy().reshape(2, -1), out["test"][0])
    coarse = load_dataset("cifar100-coarse", tmp_path)
    assert coarse.num_classes == 20 and coarse.y_train.tolist() == out["train"][2]


def test_missing_files_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TNA_DATA_DIR", str(tmp_path / "store"))
    with pytest.raises(TnaError) as e:
        load_dataset("cifar10")
    msg = str(e.value)
    assert "\n" not in msg and f"CIFAR-10 not found in {tmp_path / 'store' / 'cifar10'}" in msg
    assert "cifar-10-python.tar.gz" in msg and "cifar-10-batches-py/" in msg
    with pytest.raises(TnaError, match=r"CIFAR-100 not found in .*cifar-100-python.tar.gz"):
        load_dataset("cifar100", tmp_path)
    folder, *_ = write_cifar10(tmp_path, np.random.default_rng(3), fmt="folder")
    (folder / "data_batch_3").unlink()
    with pytest.raises(TnaError, match="lacks data_batch_3"):
        load_dataset("cifar10", tmp_path)


def test_corrupt_tarball_and_wrong_content(tmp_path):
    path, *_ = write_cifar10(tmp_path, np.random.default_rng(4))
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(TnaError, match="not a readable tarball"):
        load_dataset("cifar10", path)
    files = {"data_batch_1": py2_pickle({b"labels": [1]})}
    with pytest.raises(TnaError, match=r"data_batch_1: expected a dict with b'data'"):
        read_cifar(_write(tmp_path / "b", "cifar-10-batches-py", "t.tgz",
                          {**_valid_meta_and_batches(), **files}, "folder"), "cifar10")


def _valid_meta_and_batches():
    d, _, _ = _batch(np.random.default_rng(5), 1)
    names = [f"data_batch_{i}" for i in range(2, 6)] + ["test_batch"]
    return {**{n: py2_pickle(d) for n in names},
            "batches.meta": py2_pickle({b"label_names": CIFAR10_NAMES})}


class _Evil:
    """Pickles as a call of `func(arg)`: what a malicious file does."""

    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return (self.func, (self.arg,))


@pytest.mark.parametrize("make,refused", [
    (lambda m: _Evil(os.system, f"touch {m}"), f"{os.system.__module__}.system"),
    (lambda m: _Evil(eval, f"open({str(m)!r}, 'w')"), "builtins.eval"),
    (lambda m: {b"data": _Evil(exec, f"open({str(m)!r}, 'w')"), b"labels": [0]},
     "builtins.exec"),
])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, make, refused):
    marker = tmp_path / "PWNED"
    evil = pickle.dumps(make(marker), protocol=4)
    files = {**_valid_meta_and_batches(), "data_batch_1": evil}
    path = _write(tmp_path, "cifar-10-batches-py", "cifar-10-python.tar.gz", files, "tar.gz")
    with pytest.raises(TnaError) as e:
        load_dataset("cifar10", tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and not marker.exists()
    assert msg.startswith(f"{path}:cifar-10-batches-py/data_batch_1: refused to unpickle: "
                          f"it asks for {refused},")


def test_py3_protocol_pickles_of_bytes_are_refused_cleanly(tmp_path):
    """Python 3 at protocol 2 writes bytes through _codecs.encode, a call real files never make."""
    with pytest.raises(TnaError, match=r"x: refused to unpickle: it asks for _codecs.encode"):
        unpickle_cifar(pickle.dumps({b"data": b"123"}, protocol=2), "x")
    with pytest.raises(TnaError, match=r"x is not a readable CIFAR pickle"):
        unpickle_cifar(b"\x80\x02}(U\x04data", "x")


def test_cifar_batches_feed_conv_models(tmp_path):
    write_cifar10(tmp_path, np.random.default_rng(6), n_train=4)
    cfg = DataConfig(dataset="cifar10", data_dir=str(tmp_path), val_size=0, timesteps=3,
                     augment=True)
    data = load_data(cfg, batch_size=8)
    x, y = next(data.train.batches(0))
    assert x.shape == (8, 3, 32, 32, 3) and data.image_shape == (3, 32, 32)
    from tna.models.snn import build_model
    from tna.models.spec import make_spec
    assert make_spec("cifarnet", data.image_shape, 10).layers[0].in_shape == (3, 32, 32)
    model = build_model(make_spec("conv-small", data.image_shape, 10, input_scale=1 / 15),
                        seed=0)
    assert model(x).shape == (8, 10)
