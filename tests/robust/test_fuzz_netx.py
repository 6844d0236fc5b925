"""Fuzz the netx reader and validator with random damage to a valid file.

Byte damage (flips, truncation, appended junk) and structural damage done with h5py (datasets
deleted or replaced by other dtypes, shapes, NaN, huge or negative values, strings, groups;
groups deleted; layers renamed; metadata attributes broken). Whatever the damage:
`tna.netx.read_net` returns a model or raises TnaError; `tna.netx.validate` on a model it
returned gives a list of strings; `tna validate` exits 0, 1 (problems listed on stdout) or 2
(one `error:` line), never with a traceback.
"""
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tna import netx
from tna.errors import TnaError
from tna.neurons import Cuba


def _valid_model() -> netx.NetxModel:
    """input (1, 4, 4) -> conv 2x3x3 pad 1 -> flatten -> dense 3 (readout), with metadata."""
    rng = np.random.default_rng(0)
    hid = Cuba(i_decay=1024, v_decay=123, vth_mant=32)
    out = Cuba(i_decay=1024, v_decay=123, vth_mant=netx.NON_SPIKING_VTH_MANT)
    layers = [
        netx.Layer("input", (1, 4, 4)),
        netx.Layer("conv", (2, 4, 4), weight=2 * rng.integers(-8, 9, (2, 1, 3, 3)), neuron=hid,
                   in_channels=1, out_channels=2, kernel_size=(3, 3), stride=(1, 1),
                   padding=(1, 1), dilation=(1, 1), groups=1),
        netx.Layer("flatten", (32, 1, 1)),
        netx.Layer("dense", (3,), weight=2 * rng.integers(-8, 9, (3, 32)), neuron=out,
                   in_features=32, out_features=3, bias=np.zeros(3), delay=np.zeros(3)),
    ]
    meta = netx.Metadata(dataset="digits", class_names=["a", "b", "c"], input_shape=[1, 4, 4])
    return netx.NetxModel(layers=layers, meta=meta)


@pytest.fixture(scope="module")
def valid_net(tmp_path_factory) -> Path:
    path = netx.write_net(_valid_model(), tmp_path_factory.mktemp("fuzz") / "valid.net")
    assert netx.validate(netx.read_net(path)) == []
    return path


def _datasets(f) -> list:
    names = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return sorted(names)


def _groups(f) -> list:
    names = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Group) else None)
    return sorted(names)


REPLACEMENTS = [
    np.array([b"pool"], "S10"), np.array([b"dense"], "S10"), np.array([b"\xff\xfe"], "S10"),
    b"text", "unicode text", np.float64("nan"), np.float64("inf"), np.float64(1e30),
    np.int64(-5), np.int64(0), np.int64(2**40), np.uint8(7), True, np.zeros(0),
    np.zeros((0, 3)), np.zeros((2, 3, 4, 5, 6)), np.full((3, 32), np.nan), np.ones((32, 3)),
    np.array([1.5, -2.5]), np.array([[-1, 2], [3, 4]], np.int8), np.array([3, 0, 0]),
    np.array([-1, 4, 4]), np.complex64(1 + 2j), np.array(["a", "b"], dtype="S1"),
]


@st.composite
def damage(draw):
    kind = draw(st.sampled_from(["bytes", "truncate", "append", "replace", "delete",
                                 "delete_group", "group_for_dataset", "rename_layer",
                                 "attrs", "twice"]))
    return kind, draw(st.randoms(use_true_random=False))


def _apply(kind, rnd, path: Path) -> None:
    raw = path.read_bytes()
    if kind == "bytes":
        data = bytearray(raw)
        for _ in range(rnd.randint(1, 64)):
            data[rnd.randrange(len(data))] ^= 1 << rnd.randrange(8)
        path.write_bytes(bytes(data))
        return
    if kind == "truncate":
        path.write_bytes(raw[:rnd.randrange(len(raw))])
        return
    if kind == "append":
        path.write_bytes(raw + bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 4096))))
        return
    with h5py.File(path, "r+") as f:
        for _ in range(2 if kind == "twice" else 1):
            op = rnd.choice(["replace", "delete", "delete_group", "attrs"]) \
                if kind == "twice" else kind
            _apply_h5(op, rnd, f)


def _apply_h5(op, rnd, f) -> None:
    datasets, groups = _datasets(f), _groups(f)
    if op == "replace" and datasets:
        name = rnd.choice(datasets)
        del f[name]
        f[name] = rnd.choice(REPLACEMENTS)
    elif op == "delete" and datasets:
        del f[rnd.choice(datasets)]
    elif op == "delete_group" and groups:
        del f[rnd.choice(groups)]
    elif op == "group_for_dataset" and datasets:
        name = rnd.choice(datasets)
        del f[name]
        f.create_group(name)
    elif op == "rename_layer":
        f.move(f"layer/{rnd.randrange(4)}", rnd.choice(["layer/7", "layer/-1", "layer/x",
                                                          "layer/01"]))
    elif op == "attrs" and "tna" in f:
        key = rnd.choice(["format_version", "meta"])
        f["tna"].attrs[key] = rnd.choice(["1", "not json", "[1, 2]", '{"dataset": 3}', -1,
                                          np.float64("nan"), '{"timesteps": "x"}'])


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(damage())
def test_damaged_net_gives_tna_error_or_problem_list(valid_net, cli, damage):
    kind, rnd = damage
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "damaged.net"
        path.write_bytes(valid_net.read_bytes())
        _apply(kind, rnd, path)
        try:
            model = netx.read_net(path)
        except TnaError as e:
            assert "\n" not in str(e)
            readable = False
        else:
            problems = netx.validate(model)
            assert isinstance(problems, list) and all(isinstance(p, str) for p in problems)
            readable = True
        code, out, err = cli("validate", path)
    assert "Traceback" not in out + err
    if readable:
        assert code in (0, 1) and err == "", (code, err)
        assert (code == 0) == (problems == [])
    else:
        assert code == 2, (code, out, err)
        assert len(err.splitlines()) == 1 and err.startswith("error: "), err
