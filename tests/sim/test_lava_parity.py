"""emulate() against the real Lava simulator (Loihi2SimCfg fixed_pt): spikes, u and v, bit for bit."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tna.netx import Layer, NetxModel, conv_output_shape, read_net, write_net
from tna.neurons import Cuba
from tna.sim.emulator import emulate, first_difference
from tna.lava.harness import record_lava

pytestmark = pytest.mark.lava


def neuron(i_decay=1024, v_decay=512, vth=40) -> Cuba:
    return Cuba(i_decay=i_decay, v_decay=v_decay, vth_mant=vth)


def dense(n_in, n_out, weight, nrn, bias=None, delay=None) -> Layer:
    return Layer(type="dense", shape=(n_out,), weight=np.asarray(weight, np.float32), neuron=nrn,
                 bias=None if bias is None else np.asarray(bias, np.float32),
                 delay=None if delay is None else np.asarray(delay, np.float32),
                 in_features=n_in, out_features=n_out)


def conv(in_shape, weight, nrn, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1,
         bias=None) -> Layer:
    k = weight.shape
    layer = Layer(type="conv", shape=(), weight=np.asarray(weight, np.float32),
                  neuron=nrn, bias=None if bias is None else np.asarray(bias, np.float32),
                  in_channels=in_shape[0], out_channels=k[0], kernel_size=k[2:], stride=stride,
                  padding=padding, dilation=dilation, groups=groups)
    layer.shape = conv_output_shape(layer, in_shape)
    return layer


def check(model, x, tmp_path, **kw):
    """Write the model, run Lava and the emulator, assert they agree everywhere; return Lava's."""
    path = write_net(model, tmp_path / "net.net")
    lava = record_lava(path, x, **kw)
    emu = emulate(read_net(path), x, record=("spikes", "u", "v"), **kw)
    diff = first_difference(emu, lava)
    assert diff is None, str(diff)
    assert set(emu.spikes) == set(lava.spikes) and emu.steps == lava.steps
    if lava.out_spikes is not None:
        assert np.array_equal(emu.out_spikes.numpy(), lava.out_spikes.numpy())
        assert np.array_equal(emu.out_voltage.numpy(), lava.out_voltage.numpy())
    return lava


def test_conv_dense_graded_and_binary(tmp_path):
    rng = np.random.default_rng(0)
    layers = [Layer(type="input", shape=(2, 6, 6)),
              conv((2, 6, 6), rng.integers(-128, 128, (4, 2, 3, 3)) * 2, neuron(),
                   bias=rng.integers(-50, 50, 4)),
              Layer(type="flatten", shape=(64, 1, 1)),
              dense(64, 5, rng.integers(-128, 128, (5, 64)) * 2, neuron(vth=2**17 - 1, v_decay=0))]
    x = rng.integers(0, 16, (2, 2, 6, 6, 5))
    for bits in (0, 8):
        lava = check(NetxModel(layers=layers), x, tmp_path, input_message_bits=bits)
        assert lava.spikes[1].sum() > 20          # the test exercises spiking


def test_conv_groups_stride_padding_dilation(tmp_path):
    rng = np.random.default_rng(1)
    layers = [Layer(type="input", shape=(4, 9, 8)),
              conv((4, 9, 8), rng.integers(-64, 64, (6, 2, 3, 2)) * 4, neuron(vth=10),
                   stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2),
    ]
    assert layers[1].shape == (6, 4, 11)
    layers.append(conv((6, 4, 11), rng.integers(-128, 128, (3, 2, 2, 3)) * 2, neuron(vth=30),
                       stride=(1, 2), padding=(0, 1), groups=3))
    assert layers[2].shape == (3, 3, 6)
    x = rng.integers(0, 2, (2, 4, 9, 8, 6))
    lava = check(NetxModel(layers=layers), x, tmp_path)
    assert lava.spikes[2].sum() > 0


def test_dense_axonal_delays_and_reset(tmp_path):
    rng = np.random.default_rng(2)
    layers = [Layer(type="input", shape=(12,)),
              dense(12, 8, rng.integers(-64, 128, (8, 12)) * 2, neuron(vth=20),
                    delay=rng.integers(0, 4, 8)),
              dense(8, 6, rng.integers(-128, 128, (6, 8)) * 2, neuron(vth=20),
                    bias=rng.integers(-20, 40, 6), delay=rng.integers(0, 3, 6))]
    x = rng.integers(0, 2, (1, 12, 16))
    check(NetxModel(layers=layers), x, tmp_path, steps=20)
    lava = check(NetxModel(layers=layers), x, tmp_path, steps=20, reset_interval=5, reset_offset=1)
    assert lava.spikes[2].sum() > 0


def test_dense_input_delays(tmp_path):
    """A delay vector of the input's length is a per-input delay in netx."""
    rng = np.random.default_rng(3)
    layers = [Layer(type="input", shape=(5,)),
              dense(5, 7, rng.integers(-32, 128, (7, 5)) * 2, neuron(vth=10),
                    delay=rng.integers(0, 5, 5))]
    lava = check(NetxModel(layers=layers), rng.integers(0, 2, (1, 5, 8)), tmp_path, steps=12)
    assert lava.spikes[1].sum() > 0          # delayed input must make the layer spike


def test_overflow_24bit_current_and_conv_wrap(tmp_path):
    """Graded bursts overflow the 24-bit current (dense) and wrap the conv sum to 24 bits."""
    layers = [Layer(type="input", shape=(16, 3, 3)),
              conv((16, 3, 3), np.full((2, 16, 3, 3), 254), neuron(i_decay=0, v_decay=0,
                                                                   vth=2**17 - 1)),
              Layer(type="flatten", shape=(2, 1, 1)),
              dense(2, 3, [[254, -256], [254, 254], [-256, -256]], neuron(i_decay=0, vth=0))]
    x = np.full((1, 16, 3, 3, 4), 255)
    lava = check(NetxModel(layers=layers), x, tmp_path, input_message_bits=8)
    assert np.abs(lava.u[1].numpy()).max() > 2**22
    dense_in = [Layer(type="input", shape=(40,)),
                dense(40, 3, np.full((3, 40), 254) * [[1], [-1], [1]], neuron(i_decay=0, v_decay=0))]
    lava = check(NetxModel(layers=dense_in), np.full((1, 40, 6), 2**14 - 1), tmp_path,
                 input_message_bits=16)
    assert np.abs(lava.u[1].numpy()).max() > 2**23 - 2**20


# --------------------------------------------------------------------------- property-based

DECAYS = st.one_of(st.sampled_from([0, 1, 4095, 4096]), st.integers(0, 4096))
THRESHOLDS = st.one_of(st.sampled_from([0, 1, 2**17 - 1]), st.integers(0, 400),
                       st.integers(0, 2**17 - 1))


@st.composite
def weights(draw, shape):
    kind = draw(st.sampled_from(["uniform", "extreme", "ternary", "positive", "negative", "sparse"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "uniform":
        w = rng.integers(-128, 128, shape) * 2
    elif kind == "extreme":
        w = rng.choice([-256, 254, 0], shape)
    elif kind == "ternary":
        w = rng.choice([-1, 0, 1], shape) * draw(st.sampled_from([2, 16, 64, 128]))
    elif kind == "positive":
        w = rng.integers(0, 128, shape) * 2
    elif kind == "negative":
        w = -rng.integers(0, 129, shape) * 2
    else:
        w = rng.integers(-128, 128, shape) * 2 * (rng.random(shape) < 0.2)
    w.flat[0] = w.flat[0] or 2              # netx cannot load an all-zero layer
    return w


@st.composite
def neurons(draw):
    return Cuba(i_decay=draw(DECAYS), v_decay=draw(DECAYS), vth_mant=draw(THRESHOLDS))


@st.composite
def nets(draw, max_layers=3, max_width=10):
    """A random netx model with its input batch and input_message_bits."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    first_conv = draw(st.booleans())
    if first_conv:
        shape = (draw(st.integers(1, 4)), draw(st.integers(3, 7)), draw(st.integers(3, 7)))
    else:
        shape = (draw(st.integers(1, 40)),)
    layers = [Layer(type="input", shape=shape)]
    in_shape = shape
    for _ in range(draw(st.integers(1, max_layers))):
        bias = rng.integers(-600, 600, None) if draw(st.booleans()) else None
        if len(in_shape) == 3 and draw(st.booleans()):
            c = in_shape[0]
            groups = draw(st.sampled_from([g for g in (1, 2, 3) if c % g == 0]))
            out_c = groups * draw(st.integers(1, 3))
            kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
            stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
            padding = (draw(st.integers(0, 1)), draw(st.integers(0, 1)))
            dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
            if any(in_shape[1 + a] + 2 * padding[a] < dilation[a] * ((kh, kw)[a] - 1) + 1
                   for a in (0, 1)):
                padding, dilation = (1, 1), (1, 1)
            w = draw(weights((out_c, c // groups, kh, kw)))
            b = None if bias is None else rng.integers(-600, 600, out_c)
            layer = conv(in_shape, w, draw(neurons()), stride, padding, dilation, groups, b)
        else:
            if len(in_shape) == 3:
                layers.append(Layer(type="flatten", shape=(int(np.prod(in_shape)), 1, 1)))
            n_in, n_out = int(np.prod(in_shape)), draw(st.integers(1, max_width))
            w = draw(weights((n_out, n_in)))
            b = None if bias is None else rng.integers(-600, 600, n_out)
            delay = rng.integers(0, 4, n_out) if draw(st.integers(0, 3)) == 0 else None
            layer = dense(n_in, n_out, w, draw(neurons()), b, delay)
        layers.append(layer)
        in_shape = tuple(layer.shape)
    bits = draw(st.sampled_from([0, 0, 4, 8]))
    timesteps = draw(st.integers(1, 6))
    pattern = draw(st.sampled_from(["random", "burst", "sparse"]))
    top = 2**bits - 1 if bits else 1
    full = (1,) + shape + (timesteps,)
    if pattern == "random":
        x = rng.integers(0, top + 1, full)
    elif pattern == "burst":
        x = np.full(full, top)
    else:
        x = rng.integers(0, top + 1, full) * (rng.random(full) < 0.1)
    reset = draw(st.sampled_from([None, None, 3, timesteps + len(layers)]))
    return NetxModel(layers=layers), x, bits, reset


def _run_property(case, tmp_path):
    model, x, bits, reset = case
    kw = {"input_message_bits": bits}
    if reset is not None:
        kw.update(reset_interval=reset, reset_offset=1)
    lava = check(model, x, tmp_path, **kw)
    _check_reference(model, x, lava, reset)


def _check_reference(model, x, lava, reset):
    """reference = Lava on the aligned output, biases included, where the slayer reference
    applies: no delays, each layer starting where its data arrives (no bias, or a reset
    interval covering the sample) and no 24-bit overflow (slayer does not wrap)."""
    from tna.reference import run_reference, unsupported
    layers = [layer for layer in model.layers if layer.type in ("dense", "conv")]
    if reset is None:
        starts_clean = all(layer.bias is None for layer in layers)
    else:                         # one reset per sample, where the data reaches each layer
        starts_clean = reset >= x.shape[-1] + len(layers)
    overflow = any(np.abs(a.numpy()).max() >= 2**23 - 1 for a in (*lava.u.values(),
                                                                   *lava.v.values()))
    if unsupported(model) or not starts_clean or overflow or lava.out_voltage is None:
        return
    ref = run_reference(model, x, readout="voltage")
    assert np.array_equal(ref.voltage.numpy(), lava.out_voltage.numpy())
    assert np.array_equal(ref.spikes.numpy(), lava.out_spikes.numpy())


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=nets())
def test_random_nets_match_lava(case, tmp_path):
    _run_property(case, tmp_path)


@pytest.mark.slow
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=nets(max_layers=4, max_width=24))
def test_random_nets_match_lava_many(case, tmp_path):
    _run_property(case, tmp_path)
