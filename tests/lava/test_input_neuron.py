"""Nets whose input layer has a neuron (an encoder: lava-dl's PilotNet SNN, the bootstrap MNIST
net), run the way netx's users run them: the data goes into `net.in_layer.neuron.a_in` every
step. emulator = Lava (spikes, u and v of every layer), and reference = emulator = Lava on the
output, on generated files, one shaped like PilotNet (conv input neuron, WHC order on Lava) and
Intel's own files from the lava-dl wheel."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tna import netx
from tna.netx import Layer, NetxModel, conv_output_shape, read_net, write_net
from tna.neurons import Cuba
from tna.sim.emulator import emulate, first_difference

pytestmark = pytest.mark.lava

WHEEL = None
try:
    import tests.lava.lib.dl.netx as _netx_tests            # lava-dl's wheel ships them
    WHEEL = Path(_netx_tests.__file__).parent
except ImportError:
    pass


def _conv(in_shape, weight, nrn, stride=(1, 1), bias=None) -> Layer:
    layer = Layer("conv", (), weight=np.asarray(weight, np.float32), neuron=nrn, bias=bias,
                  in_channels=in_shape[0], out_channels=weight.shape[0],
                  kernel_size=weight.shape[2:], stride=stride, padding=(1, 1), dilation=(1, 1),
                  groups=1)
    layer.shape = conv_output_shape(layer, in_shape)
    return layer


def pilotnet_like(seed=0) -> NetxModel:
    """PilotNet SNN's structure at a small size: a (C, H, W) = (3, 10, 24) input layer with a
    CUBA neuron, two strided convs, flatten, a dense readout (wider than high, as PilotNet's
    66 x 200 frames, so a W/H mix-up cannot go unnoticed)."""
    rng = np.random.default_rng(seed)
    enc = Cuba(i_decay=1024, v_decay=128, vth_mant=80)
    c1 = _conv((3, 10, 24), rng.integers(-40, 128, (6, 3, 3, 3)) * 2,
               Cuba(i_decay=2048, v_decay=256, vth_mant=120), stride=(2, 2),
               bias=rng.integers(-20, 20, 6).astype(np.float32))
    c2 = _conv(c1.shape, rng.integers(-60, 128, (8, 6, 3, 3)) * 2,
               Cuba(i_decay=4096, v_decay=512, vth_mant=150), stride=(2, 2))
    n = int(np.prod(c2.shape))
    layers = [Layer("input", (3, 10, 24), neuron=enc), c1, c2, Layer("flatten", (n, 1, 1)),
              Layer("dense", (5,), weight=(rng.integers(-128, 128, (5, n)) * 2).astype(np.float32),
                    neuron=Cuba(i_decay=4096, v_decay=300, vth_mant=netx.VTH_MANT_MAX),
                    in_features=n, out_features=5)]
    meta = netx.Metadata(timesteps=6, encoding="direct", input_shape=[3, 10, 24],
                         input_bits=4, input_message_bits=0, readout="voltage")
    return NetxModel(layers=layers, meta=meta)


def dense_encoder(seed=1) -> NetxModel:
    """The bootstrap MNIST tutorial net's structure: a flat input neuron layer, two dense."""
    rng = np.random.default_rng(seed)
    layers = [Layer("input", (30,), neuron=Cuba(i_decay=4096, v_decay=4096, vth_mant=3)),
              Layer("dense", (12,), weight=(rng.integers(-30, 128, (12, 30)) * 2).astype(
                  np.float32), neuron=Cuba(i_decay=512, v_decay=256, vth_mant=90)),
              Layer("dense", (4,), weight=(rng.integers(-128, 128, (4, 12)) * 2).astype(
                  np.float32), neuron=Cuba(i_decay=4096, v_decay=4096, vth_mant=40))]
    return NetxModel(layers=layers)


@pytest.mark.parametrize("make, shape", [(pilotnet_like, (3, 10, 24)), (dense_encoder, (30,))])
def test_every_layer_equals_lava_with_data_into_the_input_neuron(make, shape, tmp_path):
    from tna.lava.harness import record_lava
    model = make()
    path = write_net(model, tmp_path / "enc.net")
    x = np.random.default_rng(2).integers(0, 16, (2, *shape, 6))
    steps = 6 + 4
    lava = record_lava(path, x, steps=steps)
    emu = emulate(read_net(path), x, record=("spikes", "u", "v"), steps=steps)
    assert first_difference(emu, lava) is None, str(first_difference(emu, lava))
    assert lava.spikes[0].sum() > 0 and lava.spikes[max(lava.spikes)].shape[0] == 2
    assert emu.starts[0] == 0 and emu.starts[1] == 1        # the input neuron adds no step


def test_tna_run_feeds_the_input_neuron_on_every_backend(tmp_path):
    """`tna run` without --skip-layers: reference = emulator = Lava (one compiled net, many
    samples with resets between them), data given in netx's (W, H, C) order."""
    from tna.deploy import RunConfig, run
    path = write_net(pilotnet_like(), tmp_path / "pilot.net")
    x = np.random.default_rng(3).integers(0, 16, (12, 3, 10, 24, 6))
    np.save(tmp_path / "whc.npy", x.transpose(0, 3, 2, 1, 4))      # (N, W, H, C, T)
    result = run(path, RunConfig(input=str(tmp_path / "whc.npy"), input_layout="whc",
                                 compare="reference,emulator,lava-sim", progress=False))
    assert result.ok, result.summary()
    assert list(result.outputs) == ["reference", "emulator", "lava-sim"]
    lava = result.outputs["lava-sim"]
    assert np.abs(lava.voltage).sum() > 0
    direct = emulate(read_net(path), x, record_layers=(), reset_interval=6 + 3, reset_offset=0)
    assert np.array_equal(lava.voltage, direct.out_voltage.numpy())


@pytest.mark.skipif(WHEEL is None, reason="lava-dl's netx test files are not installed")
@pytest.mark.parametrize("name, shape", [("mnist.net", (784,)), ("tiny.net", (3, 16, 16))])
def test_intels_files_with_an_input_neuron(name, shape, tmp_path):
    """lava-dl's own bootstrap MNIST and tiny nets (input layers with a CUBA neuron)."""
    from tna.lava.harness import record_lava
    path = WHEEL / name
    model = read_net(path)
    assert netx.has_input_neuron(model) and netx.validate(model) == []
    x = np.random.default_rng(4).integers(0, 64, (1, *shape, 5))
    lava = record_lava(path, x, steps=9)
    emu = emulate(model, x, record=("spikes", "u", "v"), steps=9)
    assert first_difference(emu, lava) is None, str(first_difference(emu, lava))
    last = max(lava.v)
    assert lava.spikes[0].sum() > 0 and lava.spikes[1].sum() > 0 and lava.v[last].any()
