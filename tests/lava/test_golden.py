"""run_lava against Intel's golden outputs from the lava-dl wheel (tests/lava/lib/dl/netx/gts).

lava-dl's own test_blocks.py drives a netx Dense block (gts/dense) and a Conv block with bias
(gts/tinynet, layer 1) with known inputs; here the same parameters go into netx HDF5 files and
through `run_lava`, which checks the HDF5 layout, the (W, H, C) conversion, the fast conv model
and the time alignment against data we did not produce.
"""
from pathlib import Path

import h5py
import numpy as np
import pytest

pytestmark = pytest.mark.lava


def _gts() -> Path:
    import tests.lava.lib.dl.netx as netx_tests  # lava-dl's wheel installs this package

    path = Path(netx_tests.__file__).parent / "gts"
    if not path.is_dir():
        pytest.skip(f"lava-dl golden files not found at {path}")
    return path


def _neuron(group, vth, du, dv):
    # netx maps CUBA to LIF with du = iDecay - 1, dv = vDecay, vth = vThMant.
    for key, value in {"iDecay": du + 1, "vDecay": dv, "vThMant": vth, "refDelay": 1}.items():
        group.create_dataset(f"neuron/{key}", data=value)
    group.create_dataset("neuron/type", data=b"CUBA")


def test_dense_block_golden(tmp_path):
    from tna.lava.runner import run_lava

    gts = _gts() / "dense"
    weight = np.load(gts / "weight.npy")            # (256, 200) integers
    spikes_in = np.load(gts / "in.npy").astype(int)  # (200, 2000)
    golden = np.load(gts / "out.npy").astype(int)    # (256, 2000), Lava steps 1..2000
    path = tmp_path / "dense.net"
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer/0")
        layer.create_dataset("type", data=np.array([b"dense"], dtype="S10"))
        layer.create_dataset("shape", data=np.array([256]))
        layer.create_dataset("inFeatures", data=200)
        layer.create_dataset("outFeatures", data=256)
        layer.create_dataset("weight", data=weight.astype(np.float32))
        _neuron(layer, vth=6, du=4095, dv=415)  # lava-dl test_blocks.py test_dense

    result = run_lava(path, spikes_in[None], timesteps=2000, progress=False)

    assert golden.sum() > 1000
    # Intel's output at Lava step t+1 is our raw window index t ...
    np.testing.assert_array_equal(result.raw_spikes[0, :, :2000], golden)
    # ... and, one step of synaptic delay later, the aligned output.
    np.testing.assert_array_equal(result.spikes[0, :, :1999], golden[:, 1:])


def test_conv_block_golden(tmp_path):
    from tna.lava.runner import run_lava

    gts = _gts() / "tinynet"
    kernel = np.load(gts / "layer1_kernel.npy")  # Lava layout (out, kx, ky, in)
    bias = np.load(gts / "layer1_bias.npy")
    image = np.load(gts / "input.npy").astype(int)  # (1, C=3, H=16, W=16, T=16) slayer layout
    golden = np.load(gts / "layer1.npy")[0].astype(int)  # (C=24, H=6, W=6, T=16)
    path = tmp_path / "conv.net"
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer/0")
        layer.create_dataset("type", data=np.array([b"conv"], dtype="S10"))
        layer.create_dataset("shape", data=np.array([24, 6, 6]))
        # netx reads (out, in, kh, kw), flips both spatial axes and transposes to (out, kx, ky, in).
        layer.create_dataset("weight", data=kernel.transpose(0, 3, 2, 1)[:, :, ::-1, ::-1]
                             .astype(np.float32))
        layer.create_dataset("bias", data=bias.astype(np.float32))
        for key, value in {"stride": [2, 2], "padding": [0, 0], "dilation": [1, 1]}.items():
            layer.create_dataset(key, data=np.array(value))
        layer.create_dataset("groups", data=1)
        _neuron(layer, vth=25, du=4095, dv=1024)  # lava-dl test_blocks.py test_conv

    # Intel's test feeds input steps 1..15 from a zero state; its output step t answers input t.
    result = run_lava(path, image[..., 1:], timesteps=15, progress=False)

    assert golden.sum() > 1000
    np.testing.assert_array_equal(result.spikes[0], golden[..., 1:].reshape(-1, 15))
