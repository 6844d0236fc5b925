"""Parity of tna.lava.runner.run_lava with slayer's no-shift model, bit for bit.

The reference nets are slayer CUBA blocks with delay_shift=False, exported with lava-dl's own
`export_hdf5` (integer weights W_int / 64, threshold vThMant / 64, decays / 4096).
"""
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from tna.errors import TnaError

pytestmark = pytest.mark.lava

NEVER_SPIKES = 2**17 - 1  # the largest threshold mantissa Loihi holds
I_DECAY, V_DECAY, THRESHOLD = 1024, 512, 40  # Lava units: /4096, /4096, /64


def _build(spec, in_shape, seed, last_threshold=THRESHOLD):
    """slayer blocks for spec items ('conv', out, kernel, stride, padding) / ('flatten',) /
    ('dense', out), with random even integer weights in [-16, 16] (units of 1/64)."""
    import torch
    from lava.lib.dl import slayer

    rng = np.random.default_rng(seed)
    blocks, shape = [], in_shape
    for i, item in enumerate(spec):
        threshold = last_threshold if i == len(spec) - 1 else THRESHOLD
        neuron = dict(threshold=threshold / 64, current_decay=I_DECAY / 4096,
                      voltage_decay=V_DECAY / 4096, requires_grad=False)
        common = dict(delay_shift=False, pre_hook_fx=slayer.utils.quantize_hook_fx)
        if item[0] == "flatten":
            blocks.append(slayer.block.cuba.Flatten())
            shape = (int(np.prod(shape)),)
            continue
        if item[0] == "conv":
            _, out, kernel, stride, padding = item
            block = slayer.block.cuba.Conv(neuron, shape[0], out, kernel, stride=stride,
                                           padding=padding, **common)
            shape = (out, *((s + 2 * padding - kernel) // stride + 1 for s in shape[1:]))
        else:
            block = slayer.block.cuba.Dense(neuron, shape[0], item[1], **common)
            shape = (item[1],)
        weight = rng.integers(-8, 9, size=block.synapse.weight.shape) * 2
        block.synapse.weight.data = torch.tensor(weight / 64, dtype=torch.float32)
        blocks.append(block)
    return torch.nn.ModuleList(blocks).eval()


def _reference(blocks, x):
    """(spikes, voltage * 4096) of the last block: slayer no-shift eval forward."""
    import torch

    with torch.no_grad():
        h = torch.tensor(x, dtype=torch.float32)
        for block in blocks[:-1]:
            h = block(h)
        current, voltage = blocks[-1].neuron.dynamics(blocks[-1].synapse(h))
        spikes = blocks[-1](h)
    return spikes.numpy().astype(int), voltage.numpy() * 4096


def _export(blocks, path):
    with h5py.File(path, "w") as f:  # how lava-dl's examples export a net
        for i, block in enumerate(blocks):
            block.export_hdf5(f.create_group(f"layer/{i}"))
    return path


CONV_NET = [("conv", 4, 3, 1, 1), ("conv", 6, 3, 2, 0), ("flatten",), ("dense", 7)]


def test_dense_binary_spikes_match_slayer(tmp_path):
    from tna.lava.runner import run_lava

    blocks = _build([("dense", 30), ("dense", 20), ("dense", 10)], (40,), seed=0)
    x = (np.random.default_rng(1).random((24, 40, 8)) < 0.3).astype(np.int64)
    spikes, _ = _reference(blocks, x)
    result = run_lava(_export(blocks, tmp_path / "d.net"), x, timesteps=8, progress=False)

    assert spikes.sum() > 50  # the comparison must involve spikes
    assert result.spikes.shape == (24, 10, 8) and result.voltage is None
    for k in range(len(x)):  # per sample, so a failure names the sample
        np.testing.assert_array_equal(result.spikes[k], spikes[k], err_msg=f"sample {k}")
    assert result.steps == 24 * (8 + 3) and result.raw_spikes.shape == (24, 10, 11)
    np.testing.assert_array_equal(result.raw_spikes[..., 3:11], result.spikes)


def test_conv_graded_spikes_match_slayer(tmp_path):
    from tna.lava.runner import run_lava

    # H != W and C > 1 so that a wrong (W, H, C) conversion cannot pass.
    blocks = _build(CONV_NET, (2, 7, 9), seed=2)
    x = np.random.default_rng(3).integers(0, 16, size=(20, 2, 7, 9, 6))
    spikes, _ = _reference(blocks, x)
    result = run_lava(_export(blocks, tmp_path / "c.net"), x, timesteps=6, readout="voltage",
                      input_message_bits=8, progress=False)

    assert spikes.sum() > 50
    for k in range(len(x)):
        np.testing.assert_array_equal(result.spikes[k], spikes[k], err_msg=f"sample {k}")
    assert result.voltage.shape == (20, 7, 6)


def test_conv_voltage_is_slayer_voltage_times_4096(tmp_path):
    from tna.lava.runner import run_lava

    blocks = _build(CONV_NET, (2, 7, 9), seed=4, last_threshold=NEVER_SPIKES)
    x = np.random.default_rng(5).integers(0, 16, size=(20, 2, 7, 9, 6))
    _, voltage = _reference(blocks, x)
    result = run_lava(_export(blocks, tmp_path / "v.net"), x, timesteps=6, readout="voltage",
                      input_message_bits=8, progress=False)

    assert np.abs(voltage).max() > 1000 and not result.spikes.any()
    for k in range(len(x)):
        np.testing.assert_array_equal(result.voltage[k], voltage[k], err_msg=f"sample {k}")
    np.testing.assert_array_equal(result.raw_voltage[..., 3:9], result.voltage)


def test_dense_voltage_without_spikes_matches(tmp_path):
    from tna.lava.runner import run_lava

    blocks = _build([("dense", 16), ("dense", 5)], (12,), seed=6, last_threshold=NEVER_SPIKES)
    x = (np.random.default_rng(7).random((20, 12, 5)) < 0.5).astype(np.int64)
    _, voltage = _reference(blocks, x)
    result = run_lava(_export(blocks, tmp_path / "dv.net"), x, timesteps=5, readout="voltage",
                      drain_steps=4, progress=False)

    assert result.raw_voltage.shape == (20, 5, 9)
    np.testing.assert_array_equal(result.voltage, voltage)


def test_fast_conv_equals_lava_conv():
    from lava.proc.conv import utils

    from tna.lava.procs import fast_conv

    rng = np.random.default_rng(8)
    cases = [((9, 7, 4), (6, 3, 3, 4), (1, 1), (1, 1), (1, 1), 1),
             ((10, 8, 4), (6, 3, 2, 2), (2, 1), (0, 1), (1, 2), 2),
             ((11, 11, 3), (5, 5, 5, 3), (2, 2), (2, 0), (1, 1), 1)]
    for in_shape, w_shape, stride, padding, dilation, groups in cases:
        x = rng.integers(0, 256, size=in_shape)
        w = rng.integers(-256, 255, size=w_shape).astype(np.int32)
        expected = utils.conv(x, w, w_shape[1:3], stride, padding, dilation, groups)
        got = fast_conv(x, w, w_shape[1:3], stride, padding, dilation, groups)
        np.testing.assert_array_equal(got, expected)


def test_file_is_closed_and_no_processes_remain(tmp_path):
    from tna.lava.runner import run_lava

    blocks = _build([("dense", 6)], (5,), seed=9)
    x = np.ones((2, 5, 3), dtype=np.int64)
    _reference(blocks, x)
    path = _export(blocks, tmp_path / "f.net")
    run_lava(path, x, timesteps=3, progress=False)

    with h5py.File(path, "a"):  # fails while netx still holds the file open
        pass
    assert _children(os.getpid()) == []


def _children(pid):
    """Live child processes of pid, except multiprocessing's resource tracker (one per
    Python process, started by shared memory and kept until the parent exits)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):  # the process has just ended
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and b"resource_tracker" not in cmdline:
            out.append((entry.name, fields[0], cmdline))
    return out


@pytest.mark.parametrize("kwargs, message", [
    (dict(readout="logits"), "readout"),
    (dict(backend="loihi3"), "backend"),
    (dict(timesteps=4), "timesteps"),
    (dict(drain_steps=0), "drain_steps"),
])
def test_bad_arguments_raise_tna_error(tmp_path, kwargs, message):
    from tna.lava.runner import run_lava

    blocks = _build([("dense", 6)], (5,), seed=9)
    x = np.ones((2, 5, 3), dtype=np.int64)
    _reference(blocks, x)
    path = _export(blocks, tmp_path / "e.net")
    with pytest.raises(TnaError, match=message):
        run_lava(path, x, **{"timesteps": 3, "progress": False, **kwargs})


def test_unusable_files_raise_tna_error(tmp_path):
    from tna.lava.runner import run_lava

    x = np.ones((1, 4, 2), dtype=np.int64)
    with pytest.raises(TnaError, match="no such network file"):
        run_lava(tmp_path / "missing.net", x, timesteps=2)
    path = tmp_path / "input_neuron.net"
    with h5py.File(path, "w") as f:
        f.create_dataset("layer/0/type", data=np.array([b"input"], dtype="S10"))
        f.create_dataset("layer/0/shape", data=np.array([4]))
        f.create_dataset("layer/0/neuron/type", data=b"CUBA")
        for key in ("iDecay", "vDecay", "vThMant"):
            f.create_dataset(f"layer/0/neuron/{key}", data=1)
    with pytest.raises(TnaError, match="no dense or dense_rec or conv layer"):
        run_lava(path, x, timesteps=2)


def test_loihi2_without_lava_loihi_raises(tmp_path):
    from lava.utils import loihi

    from tna.lava.runner import run_lava

    if loihi.is_installed():
        pytest.skip("lava-loihi is installed here")
    blocks = _build([("dense", 6)], (5,), seed=9)
    x = np.ones((1, 5, 3), dtype=np.int64)
    _reference(blocks, x)
    with pytest.raises(TnaError, match="Loihi 2 backend needs lava-loihi"):
        run_lava(_export(blocks, tmp_path / "l.net"), x, timesteps=3, backend="loihi2")
