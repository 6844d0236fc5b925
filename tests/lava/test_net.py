"""tna's netx loader: ternary conv kernels reach Lava at 2 bits, and every output stays exact.

A tiny net of two ternary convs (±64: exponent -1, ±32: exponent -2) and an 8-bit dense readout
runs on Lava with tna's loader and with unmodified netx; the reference, the emulator and Lava
agree bit for bit (every layer's u, v and spikes for the emulator and Lava).
"""
from __future__ import annotations

import numpy as np
import pytest

from tna import netx
from tna.netx import Layer, NetxModel, read_net, write_net
from tna.neurons import Cuba
from tna.sim.emulator import emulate, first_difference

SAMPLES, T = 3, 4


def ternary_conv_net() -> NetxModel:
    rng = np.random.default_rng(3)
    nrn = Cuba(i_decay=1024, v_decay=512, vth_mant=40)

    def conv(in_shape, out, scale):
        c, h, w = in_shape
        weight = rng.choice([-1, 0, 1], (out, c, 3, 3)) * float(scale)
        return Layer(type="conv", shape=(out, h - 2, w - 2), weight=weight, neuron=nrn,
                     in_channels=c, out_channels=out, kernel_size=(3, 3), stride=(1, 1),
                     padding=(0, 0), dilation=(1, 1), groups=1)

    return NetxModel(layers=[
        Layer(type="input", shape=(2, 7, 7)),
        conv((2, 7, 7), 4, 64),                    # ternary, 2 bits, exponent -1
        conv((4, 5, 5), 3, 32),                    # ternary, 2 bits, exponent -2
        Layer(type="flatten", shape=(27, 1, 1)),
        Layer(type="dense", shape=(5,), weight=rng.integers(-128, 128, (5, 27)) * 2.0,
              neuron=Cuba(i_decay=512, v_decay=0, vth_mant=2**17 - 1),
              in_features=27, out_features=5)])


def sample_inputs(seed=0):
    return np.random.default_rng(seed).integers(0, 16, (SAMPLES, 2, 7, 7, T))


def test_weight_bit_rule_per_loader():
    model = ternary_conv_net()
    rows = {loader: [netx.weight_bits(layer, loader) for layer in model.layers]
            for loader in netx.LOADERS}
    assert rows["tna"][1:3] == [(2, -1), (2, -2)]
    assert rows["netx"][1:3] == [(8, 0), (8, 0)]
    assert rows["tna"][4] == rows["netx"][4]                   # dense: the same rule
    zero = Layer(type="conv", shape=(1, 1, 1), weight=np.zeros((1, 1, 1, 1)))
    assert netx.weight_bits(zero, "tna") == (8, 0)            # tna's loader leaves it alone


def test_inspect_reports_memory_with_both_loaders(tmp_path):
    from tna.deploy.inspect import costs, inspect_net

    path = write_net(ternary_conv_net(), tmp_path / "t.net")
    cost = costs(path)
    conv = cost["layers"][1]
    assert (conv["bits"], conv["tna_bits"]) == (8, 2)
    assert conv["mem_bits"] == 4 * 2 * 9 * 8 and conv["tna_mem_bits"] == 4 * 2 * 9 * 2
    assert cost["tna_mem_bits"] < cost["mem_bits"]
    text = inspect_net(path)
    assert f"memory {cost['tna_mem_bits']:,} bits" in text and f"{cost['mem_bits']:,} bits" in text


@pytest.mark.lava
def test_tna_loader_holds_ternary_convs_at_2_bits(tmp_path):
    from tna.lava.info import loaded_weight_bits

    path = write_net(ternary_conv_net(), tmp_path / "t.net")
    tna_rows = loaded_weight_bits(path, "tna")
    netx_rows = loaded_weight_bits(path, "netx")
    assert [r[2:] for r in tna_rows if r[1] == "conv"] == [(2, -1), (2, -2)]
    assert [r[2:] for r in netx_rows if r[1] == "conv"] == [(8, 0), (8, 0)]
    assert [r for r in tna_rows if r[1] == "dense"] == [r for r in netx_rows if r[1] == "dense"]
    # the rule tna.netx states (inspect, emulator) is what Lava got
    model = read_net(path)
    for loader, rows in (("tna", tna_rows), ("netx", netx_rows)):
        assert [r[2:] for r in rows] == [netx.weight_bits(model.layers[r[0]], loader)
                                         for r in rows]


@pytest.mark.lava
@pytest.mark.parametrize("loader", ["tna", "netx"])
def test_every_layer_equals_the_emulator(tmp_path, loader):
    from tna.lava.harness import record_lava

    path = write_net(ternary_conv_net(), tmp_path / "t.net")
    x = sample_inputs()
    for bits in (0, 8):
        lava = record_lava(path, x, input_message_bits=bits, loader=loader)
        emu = emulate(read_net(path), x, input_message_bits=bits, record=("spikes", "u", "v"),
                      loader=loader)
        diff = first_difference(emu, lava)
        assert diff is None, str(diff)
        assert lava.spikes[1].sum() > 10 and lava.spikes[2].sum() > 0   # the convs spike


@pytest.mark.lava
def test_run_backends_agree_with_reference(tmp_path):
    """`tna run`'s Lava path (fast and stock models, tna's loader; unmodified netx) = emulator =
    reference on the aligned output."""
    from tna.lava.runner import run_lava
    from tna.reference import run_reference

    model = ternary_conv_net()
    path = write_net(model, tmp_path / "t.net")
    x = sample_inputs(1)
    ref = run_reference(model, x, readout="voltage")
    for loader in netx.LOADERS:
        emu = emulate(model, x, input_message_bits=8, record_layers=(), loader=loader)
        assert np.array_equal(emu.out_voltage.flatten(1, -2).numpy(), ref.voltage.numpy())
    runs = [("tna", "fast"), ("tna", "stock"), ("netx", "fast")]
    for loader, models in runs:
        lava = run_lava(path, x, timesteps=T, readout="voltage", input_message_bits=8,
                        progress=False, models=models, loader=loader)
        assert np.array_equal(lava.voltage, ref.voltage.numpy()), (loader, models)
        assert np.array_equal(lava.spikes, ref.spikes.numpy().astype(int)), (loader, models)


@pytest.mark.lava
def test_conv_model_applies_weight_bits_like_dense():
    """The conv model's weight handling equals PyDenseModelBitAcc's: clip, truncate, shift."""
    from lava.lib.dl.netx.utils import optimize_weight_bits
    from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights

    rng = np.random.default_rng(7)
    for trial in range(200):
        w = rng.choice([-1, 0, 1], (3, 2, 3, 3)) * int(rng.choice([2, 8, 32, 64, 128]))
        if trial % 2:
            w = rng.integers(-128, 128, (3, 2, 3, 3)) * 2
        w.flat[0] = w.flat[0] or 2
        with np.errstate(all="ignore"):
            ref, bits, exp, _ = optimize_weight_bits(w.copy())
        sign = determine_sign_mode(ref.astype(np.int32))
        ref = truncate_weights(clip_weights(ref.astype(np.int32), sign, num_bits=8), sign, bits)
        got, got_exp = netx.synapse_weights(w)
        assert got_exp == exp and np.array_equal(got, ref)
        assert netx.optimize_weight_bits(w)[1:] == (bits, exp)
