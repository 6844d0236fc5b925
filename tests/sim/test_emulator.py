"""tna.sim.emulate without the Lava simulator: modes agree, errors name the problem."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tna.errors import TnaError
from tna.netx import Layer, NetxModel, synapse_weights
from tna.neurons import Cuba, Sdnn
from tna.sim import emulate, first_difference


def small_net(bias=False, delay=False) -> NetxModel:
    rng = np.random.default_rng(0)
    nrn = Cuba(i_decay=1024, v_decay=256, vth_mant=24)
    layers = [Layer(type="input", shape=(2, 7, 7)),
              Layer(type="conv", shape=(4, 5, 5), weight=rng.integers(-64, 64, (4, 2, 3, 3)) * 4.0,
                    neuron=nrn, bias=rng.integers(-20, 20, 4) * 1.0 if bias else None,
                    in_channels=2, out_channels=4, kernel_size=(3, 3), stride=(1, 1),
                    padding=(0, 0), dilation=(1, 1), groups=1),
              Layer(type="flatten", shape=(100, 1, 1)),
              Layer(type="dense", shape=(6,), weight=rng.integers(-128, 128, (6, 100)) * 2.0,
                    neuron=Cuba(i_decay=512, v_decay=0, vth_mant=2**17 - 1),
                    delay=rng.integers(0, 3, 6) * 1.0 if delay else None,
                    in_features=100, out_features=6)]
    return NetxModel(layers=layers)


def inputs(n=6, t=4, seed=1):
    return torch.as_tensor(np.random.default_rng(seed).integers(0, 16, (n, 2, 7, 7, t)))


@pytest.mark.parametrize("bias", [False, True])
def test_windowed_aligned_equals_full_timeline(bias):
    model, x = small_net(bias=bias), inputs()
    kw = dict(input_message_bits=8, reset_interval=6, reset_offset=1)
    full = emulate(model, x, record=("spikes", "v"), **kw)
    fast = emulate(model, x, record_layers=(), **kw)
    assert fast.spikes == {} and full.spikes[1].shape == (6, 4, 5, 5, 6)
    assert full.out_voltage.shape == (6, 6, 4) and full.out_voltage.abs().sum() > 0
    assert torch.equal(fast.out_voltage, full.out_voltage)
    assert torch.equal(fast.out_spikes, full.out_spikes)
    assert torch.equal(full.out_voltage, full.v[3][..., 2:6])      # aligned = raw[tau + L]
    assert full.spikes[1].sum() > 0


def test_batches_are_independent():
    model, x = small_net(bias=True, delay=True), inputs(n=5)
    whole = emulate(model, x, record=("spikes", "u", "v"), steps=12)
    split = emulate(model, x, record=("spikes", "u", "v"), steps=12, batch_size=2)
    one = emulate(model, x[3:4], record=("spikes", "u", "v"), steps=12)
    assert first_difference(whole, split) is None
    for name in ("spikes", "u", "v"):
        assert torch.equal(getattr(one, name)[3], getattr(whole, name)[3][3:4])


def test_first_difference_names_layer_step_and_neuron():
    model, x = small_net(), inputs(n=2)
    a = emulate(model, x, record=("spikes", "u", "v"))
    b = emulate(model, x, record=("spikes", "u", "v"))
    assert first_difference(a, b) is None
    b.u[3][1, 4, 5] += 1
    b.v[1][0, 2, 3, 1, 2] += 7
    d = first_difference(a, b)
    assert (d.layer, d.variable, d.step, d.sample, d.neuron) == (1, "v", 2, 0, (2, 3, 1))
    assert d.b - d.a == 7 and "layer/1 v" in str(d) and "Lava step 3" in str(d)


def test_binary_input_treats_any_nonzero_value_as_a_spike():
    model, x = small_net(), inputs()
    assert torch.equal(emulate(model, x).out_voltage, emulate(model, (x > 0).long()).out_voltage)
    assert not torch.equal(emulate(model, x, input_message_bits=8).out_voltage,
                           emulate(model, x).out_voltage)


def test_dense_weight_handling_matches_netx_rules():
    w, e = synapse_weights(np.array([[64, -64], [0, 64]]))         # ternary: 2-bit weights
    assert e == -1 and np.array_equal(w, [[128, -128], [0, 128]])
    w, e = synapse_weights(np.array([[-64, 0], [0, -64]]))         # all <= 0: Lava clips -256
    assert e == -2 and np.array_equal(w, [[-128, 0], [0, -128]])      # to -255, then truncates
    w, e = synapse_weights(np.array([[254, -256], [2, 0]]))
    assert e == 0 and np.array_equal(w, [[254, -256], [2, 0]])


@pytest.mark.parametrize("layer, message", [
    (Layer(type="input", shape=(3,), neuron=Sdnn(vth_mant=1)),
     "CUBA neurons only, not 'SDNN'.*--backend lava-sim"),
    (Layer(type="pool", shape=(3,)), "'pool' layers are not supported"),
])
def test_unsupported_layers_raise(layer, message):
    model = NetxModel(layers=[layer, Layer(type="dense", shape=(2,), weight=np.ones((2, 3)) * 2,
                                           neuron=Cuba(0, 0, 1))])
    with pytest.raises(TnaError, match=message):
        emulate(model, np.zeros((1, 3, 2), dtype=int))


def test_bad_arguments_raise():
    model = small_net()
    with pytest.raises(TnaError, match="sample shape"):
        emulate(model, np.zeros((1, 3, 7, 7, 2), dtype=int))
    with pytest.raises(TnaError, match="integers"):
        emulate(model, np.full((1, 2, 7, 7, 2), 0.5))
    with pytest.raises(TnaError, match="record"):
        emulate(model, inputs(), record=("w",))
    zero = NetxModel(layers=[Layer(type="input", shape=(3,)),
                             Layer(type="dense", shape=(2,), weight=np.zeros((2, 3)),
                                   neuron=Cuba(0, 0, 1))])
    with pytest.raises(TnaError, match="all weights are zero"):
        emulate(zero, np.zeros((1, 3, 2), dtype=int))


@pytest.mark.lava
def test_dense_weights_equal_lavas_own_functions():
    from lava.lib.dl.netx.utils import optimize_weight_bits
    from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights

    rng = np.random.default_rng(5)
    for trial in range(300):
        kind = trial % 5
        if kind == 0:
            w = rng.integers(-128, 128, (4, 6)) * 2
        elif kind == 1:
            w = rng.choice([-1, 0, 1], (4, 6)) * int(rng.choice([1, 2, 4, 16, 64, 128]))
        elif kind == 2:
            w = rng.integers(0, 256, (4, 6))
        elif kind == 3:
            w = -rng.integers(0, 257, (4, 6))
        else:
            w = rng.choice([-256, 254, 0, 2], (4, 6))
        w.flat[0] = w.flat[0] or 2
        with np.errstate(all="ignore"):
            ref, bits, exp, _ = optimize_weight_bits(w.copy())
        ref = ref.astype(np.int32)
        sign = determine_sign_mode(ref)
        ref = truncate_weights(clip_weights(ref, sign, num_bits=8), sign, bits)
        got, got_exp = synapse_weights(w)
        assert got_exp == exp and np.array_equal(got, ref), w


@pytest.mark.lava
def test_aligned_output_equals_slayer_no_shift():
    """out[..., tau] is what slayer CUBA blocks with delay_shift=False give at step tau."""
    from lava.lib.dl import slayer

    model, x = small_net(), inputs(n=8, t=5)
    res = emulate(model, x, input_message_bits=8, record_layers=())
    blocks = []
    for layer in model.layers[1:]:
        if layer.type == "flatten":
            blocks.append(slayer.block.cuba.Flatten())
            continue
        n = layer.neuron
        params = {"threshold": n.vth_mant / 64, "current_decay": n.i_decay / 4096,
                  "voltage_decay": n.v_decay / 4096, "requires_grad": False}
        if layer.type == "conv":
            b = slayer.block.cuba.Conv(params, 2, 4, 3, weight_scale=1, pre_hook_fx=None,
                                       delay_shift=False)
        else:
            b = slayer.block.cuba.Dense(params, 100, 6, weight_scale=1, pre_hook_fx=None,
                                        delay_shift=False)
        b.synapse.weight.data = torch.as_tensor(layer.weight / 64,
                                                dtype=torch.float32).reshape(b.synapse.weight.shape)
        blocks.append(b)
    with torch.no_grad():
        h = x.float()
        for b in blocks[:-1]:
            h = b(h)
        _, voltage = blocks[-1].neuron.dynamics(blocks[-1].synapse(h))
    assert torch.equal((voltage * 4096).round().long(), res.out_voltage.long())
    assert res.out_voltage.abs().max() > 1000
