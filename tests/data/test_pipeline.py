"""Quantisation, augmentation, encodings, splits, config validation and deterministic batching."""
import numpy as np
import pytest
import torch

from tna.data import (DataConfig, RawData, augment_batch, encode, load_data, load_dataset,
                      quantize_input, split_indices)
from tna.errors import TnaError


def _raw(n_train=40, n_test=12, hw=(6, 7), hflip=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    return RawData("synthetic",
                   torch.randint(0, 256, (n_train, 2, *hw), generator=g, dtype=torch.uint8),
                   torch.arange(n_train) % 3,
                   torch.randint(0, 256, (n_test, 2, *hw), generator=g, dtype=torch.uint8),
                   torch.arange(n_test) % 3, ("a", "b", "c"), hflip, "synthetic")


def test_quantize_boundaries():
    x = torch.tensor([0, 8, 9, 17, 127, 128, 246, 247, 255], dtype=torch.uint8)
    q = quantize_input(x, 4)
    assert q.dtype == torch.float32
    assert q.tolist() == [0, 0, 1, 1, 7, 8, 14, 15, 15]
    all_px = torch.arange(256, dtype=torch.uint8)
    for bits in range(1, 9):
        levels = 2 ** bits - 1
        expected = [int(np.floor(v * levels / 255 + 0.5)) for v in range(256)]
        assert quantize_input(all_px, bits).tolist() == expected
    assert quantize_input(all_px, 8).tolist() == list(range(256))
    with pytest.raises(TypeError):
        quantize_input(all_px.float(), 4)


def test_crop_is_a_shift():
    """Every augmented sample equals its source shifted by (dy, dx) in -4..4 with zero fill."""
    g = torch.Generator().manual_seed(1)
    x = torch.randint(1, 256, (64, 3, 10, 9), generator=g, dtype=torch.uint8)  # no zeros
    out = augment_batch(x, torch.Generator().manual_seed(2), padding=4, hflip=False)
    assert out.shape == x.shape and out.dtype == torch.uint8
    shifts = set()
    for src, dst in zip(x, out):
        found = []
        for dy in range(-4, 5):
            for dx in range(-4, 5):
                ref = torch.zeros_like(src)
                # dst[i, j] = src[i + dy, j + dx] where inside, else 0.
                ys, yd = slice(max(dy, 0), 10 + min(dy, 0)), slice(max(-dy, 0), 10 + min(-dy, 0))
                xs, xd = slice(max(dx, 0), 9 + min(dx, 0)), slice(max(-dx, 0), 9 + min(-dx, 0))
                ref[:, yd, xd] = src[:, ys, xs]
                if torch.equal(ref, dst):
                    found.append((dy, dx))
        assert len(found) == 1
        shifts.add(found[0])
    assert len(shifts) > 20  # offsets really vary per sample
    assert torch.equal(augment_batch(x, torch.Generator().manual_seed(2), 0, False), x)


def test_flip():
    x = torch.arange(2 * 1 * 2 * 3, dtype=torch.uint8).reshape(2, 1, 2, 3).repeat(100, 1, 1, 1)
    out = augment_batch(x, torch.Generator().manual_seed(0), padding=0, hflip=True)
    flipped = torch.tensor([torch.equal(o, s.flip(-1)) for o, s in zip(out, x)])
    kept = torch.tensor([torch.equal(o, s) for o, s in zip(out, x)])
    assert bool((flipped | kept).all()) and 70 < int(flipped.sum()) < 130


def test_digits_never_flip():
    """With padding 0 the only possible change is a flip: digits must come back unchanged."""
    raw = load_dataset("digits")
    cfg = DataConfig(dataset="digits", crop_padding=0, encoding="direct", input_bits=8,
                     timesteps=1, val_size=0)
    data = load_data(cfg, batch_size=2000, raw=raw)
    assert data.hflip is False and data.train.augment
    x, y = next(data.train.batches(0))
    assert x.shape == (1438, 1, 8, 8, 1)
    # Shuffled order: compare as sets of images.
    got = {tuple(v.flatten().int().tolist()) for v in x}
    ref = {tuple(v.flatten().int().tolist()) for v in raw.x_train}
    assert got == ref


def test_augment_shapes_and_encodings():
    data = load_data(DataConfig(dataset="digits", timesteps=3), batch_size=32)
    x, y = next(data.train.batches(0))
    assert x.shape == (32, 1, 8, 8, 3) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert float(x.max()) <= 15 and torch.equal(x, x.round())
    assert torch.equal(x[..., 0], x[..., 2])  # direct: same image every step
    flat = load_data(DataConfig(dataset="digits", timesteps=3, flatten=True), batch_size=32)
    xf, _ = next(flat.test.batches())
    assert xf.shape == (32, 64, 3) and flat.sample_shape == (64,)
    assert data.sample_shape == (1, 8, 8) and data.num_classes == 10


def test_rate_mean():
    x = torch.tensor([0, 51, 128, 204, 255], dtype=torch.uint8).view(1, 5, 1, 1)
    x = x.repeat(400, 1, 1, 1)
    s = encode(x, "rate", 50, generator=torch.Generator().manual_seed(0))
    assert s.shape == (400, 5, 1, 1, 50) and set(s.unique().tolist()) <= {0.0, 1.0}
    rate = s.mean(dim=(0, 2, 3, 4))
    np.testing.assert_allclose(rate.numpy(), [0, 0.2, 128 / 255, 0.8, 1], atol=0.01)
    assert rate[0] == 0 and rate[4] == 1


def test_determinism_and_resume():
    raw = _raw()
    cfg = DataConfig(dataset="digits", encoding="rate", timesteps=2, val_size=8, seed=3)
    a = load_data(cfg, batch_size=7, raw=raw)
    b = load_data(cfg, batch_size=7, raw=raw)
    ep1 = list(a.train.batches(1))
    assert len(ep1) == len(a.train) == 5  # 32 samples
    for (xa, ya), (xb, yb) in zip(ep1, b.train.batches(1)):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    for (xa, ya), (xb, yb) in zip(ep1[2:], b.train.batches(1, start=2)):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    ep2 = list(a.train.batches(2))
    assert not torch.equal(ep1[0][0], ep2[0][0])
    other = load_data(DataConfig(dataset="digits", encoding="rate", timesteps=2, val_size=8,
                                 seed=4), batch_size=7, raw=raw)
    assert not torch.equal(ep1[0][0], next(other.train.batches(1))[0])
    # eval splits: file order, every sample once, same batches every call
    ys = torch.cat([y for _, y in a.test.batches()])
    assert torch.equal(ys, raw.y_test)
    assert torch.equal(next(iter(a.val))[0], next(b.val.batches())[0])


def test_splits_partition():
    cfg = DataConfig(dataset="digits", val_size=0.25, seed=5)
    tr, va, te = split_indices(40, 12, cfg)
    assert len(va) == 10 and len(tr) == 30 and te.tolist() == list(range(12))
    assert sorted(torch.cat([tr, va]).tolist()) == list(range(40))
    tr2, va2, te2 = split_indices(40, 12, DataConfig(dataset="digits", val_size=0.25, seed=5,
                                                     limit=6))
    assert set(va2.tolist()) <= set(va.tolist()) and len(va2) == 6  # val set fixed by seed
    assert set(tr2.tolist()) <= set(tr.tolist()) and len(tr2) == 6 and len(te2) == 6
    _, va0, _ = split_indices(40, 12, DataConfig(dataset="digits", val_size=0))
    assert len(va0) == 0
    assert load_data(DataConfig(dataset="digits", val_size=0), raw=_raw()).val is None
    with pytest.raises(TnaError, match="leaves no training samples"):
        split_indices(40, 12, DataConfig(dataset="digits", val_size=40))


def test_flat_data_cannot_augment():
    raw = _raw(hw=(1, 1))
    with pytest.raises(TnaError, match="augment needs images"):
        load_data(DataConfig(dataset="digits"), raw=raw)
    data = load_data(DataConfig(dataset="digits", augment=False, flatten=True), raw=raw)
    assert next(data.train.batches())[0].shape == (40 - 4, 2, 5)


@pytest.mark.parametrize("kwargs,match", [
    (dict(dataset="cifar"), "dataset = 'cifar'"),
    (dict(val_size=-1), "val_size = -1"),
    (dict(val_size=1.5), "val_size = 1.5"),
    (dict(val_size=float("nan")), "val_size = nan"),
    (dict(limit=0), "limit = 0"),
    (dict(augment="yes"), "augment = 'yes'"),
    (dict(encoding="latency"), "encoding = 'latency'"),
    (dict(input_bits=9), "input_bits = 9"),
    (dict(input_bits=True), "input_bits = True"),
    (dict(timesteps=0), "timesteps = 0"),
    (dict(crop_padding=-1), "crop_padding = -1"),
    (dict(seed=1.5), "seed = 1.5"),
    (dict(data_dir=3), "data_dir = 3"),
])
def test_config_validation(kwargs, match):
    with pytest.raises(TnaError, match=match.replace("(", r"\(").replace(".", r"\.")):
        DataConfig(**kwargs)


def test_config_round_trip(tmp_path):
    cfg = DataConfig(dataset="npz:/x.npz", data_dir=tmp_path, limit=100, encoding="rate")
    assert cfg.data_dir == str(tmp_path)
    assert DataConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.input_max == 1 and DataConfig(input_bits=3).input_max == 7
    with pytest.raises(TnaError, match="unknown key\\(s\\) bogus"):
        DataConfig.from_dict({"bogus": 1})
