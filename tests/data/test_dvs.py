"""CIFAR10-DVS: AEDAT 2.0 files as jAER writes them, the published bit layout, binning, wiring."""
import numpy as np
import pytest
import torch

from tna.data import DataConfig, augment_batch, keyed_generator, load_data, load_dataset
from tna.data.dvs import CLASSES, bin_events, read_aedat
from tna.errors import TnaError

HEADER = (b"#!AER-DAT2.0\r\n"
          b"# This is a raw AE data file - do not edit\r\n"
          b"# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each "
          b"event\r\n"
          b"# Timestamps tick is 1 us\r\n"
          b"# created Thu Mar 02 10:21:41 CST 2017\r\n")


def address(x, y, p):
    """The DVS128 address of an event at (x, y) with polarity p, in the published convention:
    raw x in bits 7..1, raw y in bits 14..8, raw polarity in bit 0; x = 127 - raw_y,
    y = 127 - raw_x, p = 1 - raw_p."""
    return ((127 - x) << 8) | ((127 - y) << 1) | (1 - p)


def write_aedat(path, x, y, p, t, header=HEADER):
    rec = np.empty(len(t), dtype=[("a", ">u4"), ("t", ">u4")])
    rec["a"] = [address(*e) for e in zip(x, y, p)]
    rec["t"] = t
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + rec.tobytes())


def test_bit_layout_by_hand(tmp_path):
    # 0x1203: raw_y = 0x12 = 18, raw_x = 0x03 >> 1 = 1, raw_p = 1; bits 15 and up are ignored,
    # as the published loaders ignore them.
    path = tmp_path / "one.aedat"
    path.write_bytes(HEADER + bytes.fromhex("00001203 000003e8 80001202 000007d0"))
    ev = read_aedat(path)
    assert ev["x"].tolist() == [109, 109] and ev["y"].tolist() == [126, 126]
    assert ev["p"].tolist() == [0, 1] and ev["t"].tolist() == [1000, 2000]
    assert address(109, 126, 0) == 0x1203


def test_read_recovers_events(tmp_path):
    rng = np.random.default_rng(0)
    x, y, p = rng.integers(0, 128, 50), rng.integers(0, 128, 50), rng.integers(0, 2, 50)
    t = np.sort(rng.integers(0, 2**32, 50, dtype=np.int64))
    write_aedat(tmp_path / "e.aedat", x, y, p, t)
    ev = read_aedat(tmp_path / "e.aedat")
    for k, v in dict(x=x, y=y, p=p, t=t).items():
        assert ev[k].tolist() == v.tolist(), k


def test_equal_event_bins():
    ev = {"x": np.arange(10), "y": np.zeros(10, int), "p": np.arange(10) % 2,
          "t": np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 1000])}
    f = bin_events(ev, 3)  # 10 events: 3, 3, then the last 4
    assert f.shape == (2, 128, 128, 3) and f.dtype == np.uint8 and f.sum() == 10
    assert f.sum(axis=(0, 1, 2)).tolist() == [3, 3, 4]
    assert f[0, 0, 2, 0] == 1 and f[1, 0, 3, 1] == 1 and f[1, 0, 9, 2] == 1
    few = bin_events({k: v[:2] for k, v in ev.items()}, 3)  # fewer events than bins
    assert few.sum(axis=(0, 1, 2)).tolist() == [0, 0, 2]


def test_equal_time_bins_and_downsampling():
    ev = {"x": np.array([0, 1, 126, 127, 5]), "y": np.array([0, 1, 127, 127, 5]),
          "p": np.array([1, 1, 0, 0, 0]), "t": np.array([100, 150, 199, 250, 400])}
    f = bin_events(ev, 3, binning="time")  # span 300 us: [100,200) [200,300) [300,400]
    assert f.sum(axis=(0, 1, 2)).tolist() == [3, 1, 1]
    small = bin_events(ev, 3, size=64, binning="time")  # 2x2 pixel blocks summed
    assert small.shape == (2, 64, 64, 3) and small[1, 0, 0, 0] == 2
    assert small[0, 63, 63, 0] == 1 and small[0, 63, 63, 1] == 1
    with pytest.raises(TnaError, match="must divide 128"):
        bin_events(ev, 3, size=48)
    many = {k: np.repeat(v[:1], 300) for k, v in ev.items()}
    assert bin_events(many, 1)[1, 0, 0, 0] == 255  # counts saturate in uint8


def _write_dataset(root, per_class=3, events=40):
    """Files 0, 2, 10, ... per class (numeric order matters: 10 sorts after 2)."""
    rng = np.random.default_rng(1)
    kept = {}
    for c in CLASSES:
        for i in [0, 2, 10, 11][:per_class]:
            x, y = rng.integers(0, 128, events), rng.integers(0, 128, events)
            p, t = rng.integers(0, 2, events), np.arange(events) * 1000
            write_aedat(root / c / f"cifar10_{c}_{i}.aedat", x, y, p, t)
            kept[(c, i)] = dict(x=x, y=y, p=p, t=t)
    return kept


def test_dataset_split_labels_and_values(tmp_path):
    kept = _write_dataset(tmp_path)
    raw = load_dataset("cifar10-dvs", tmp_path, timesteps=4)
    assert raw.x_train.shape == (20, 2, 128, 128, 4) and raw.x_test.shape == (10, 2, 128, 128, 4)
    assert raw.sample_shape == (2, 128, 128) and raw.timesteps == 4
    assert raw.y_test.tolist() == list(range(10)) and raw.class_names == CLASSES
    assert raw.y_train.tolist() == [c for c in range(10) for _ in range(2)]
    # test: file 0 of each class (the first tenth, at least one); train: files 2 then 10.
    assert np.array_equal(raw.x_test[3].numpy(), bin_events(kept[("cat", 0)], 4))
    assert np.array_equal(raw.x_train[1].numpy(), bin_events(kept[("airplane", 10)], 4))
    small = load_dataset("cifar10-dvs-32", tmp_path, timesteps=4)
    assert small.x_train.shape == (20, 2, 32, 32, 4)
    assert np.array_equal(small.x_test[3].numpy(), bin_events(kept[("cat", 0)], 4, size=32))


def test_missing_and_bad_files_say_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("TNA_DATA_DIR", str(tmp_path / "store"))
    with pytest.raises(TnaError) as e:
        load_dataset("cifar10-dvs", timesteps=4)
    msg = str(e.value)
    assert "\n" not in msg and "airplane.zip" in msg
    assert f"CIFAR10-DVS not found in {tmp_path / 'store' / 'cifar10-dvs'}" in msg
    assert str(tmp_path / "store" / "cifar10-dvs" / "airplane" / "cifar10_airplane_0.aedat") \
        in msg
    _write_dataset(tmp_path / "d", per_class=1)
    for f in (tmp_path / "d" / "truck").iterdir():
        f.unlink()
    with pytest.raises(TnaError, match="no .aedat files for truck: unzip truck.zip"):
        load_dataset("cifar10-dvs", tmp_path / "d", timesteps=4)
    bad = tmp_path / "bad.aedat"
    bad.write_bytes(HEADER + b"\x00" * 12)
    with pytest.raises(TnaError, match="truncated"):
        read_aedat(bad)
    bad.write_bytes(b"#!AER-DAT3.1\r\n#Format: RAW\r\n#!END-HEADER\r\n" + b"\x00" * 28)
    with pytest.raises(TnaError, match="is AEDAT 3.1; only AEDAT 2.0"):
        read_aedat(bad)


def test_events_through_pipeline_and_model(tmp_path):
    _write_dataset(tmp_path, per_class=2, events=400)
    cfg = DataConfig(dataset="cifar10-dvs-32", data_dir=str(tmp_path), timesteps=4, val_size=0,
                     augment=False, input_bits=2)
    data = load_data(cfg, batch_size=10)
    raw = load_dataset("cifar10-dvs-32", tmp_path, timesteps=4)
    x, _ = next(data.test.batches(0))
    assert x.shape == (10, 2, 32, 32, 4) and data.image_shape == (2, 32, 32)
    assert torch.equal(x, raw.x_test.clamp(max=3).float())  # counts clipped at 2**bits - 1
    rate = load_data(DataConfig(**{**cfg.to_dict(), "encoding": "rate", "flatten": True}),
                     batch_size=10)
    xr, _ = next(rate.test.batches(0))
    assert torch.equal(xr, (raw.x_test > 0).float().reshape(10, -1, 4))
    with pytest.raises(TnaError, match="binned into 4 frames but data.timesteps is 5"):
        load_data(DataConfig(**{**cfg.to_dict(), "timesteps": 5}), raw=raw)
    from tna.models.snn import build_model
    from tna.models.spec import make_spec
    model = build_model(make_spec("8c3s2-16c3s2-out", (2, 32, 32), 10, input_scale=1 / 3),
                        seed=0)
    assert model(x).shape == (10, 10)


def test_augment_crops_every_frame_alike():
    x = torch.randint(0, 255, (3, 2, 6, 6, 4), dtype=torch.uint8)
    out = augment_batch(x, keyed_generator(7), padding=2, hflip=True)
    for k in range(4):
        frame = augment_batch(x[..., k].contiguous(), keyed_generator(7), padding=2, hflip=True)
        assert torch.equal(out[..., k], frame)
