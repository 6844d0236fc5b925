"""tna.deploy.inputs: --input arrays in either layout, a batch axis or not, shaped like a NIR
graph's Input; every mistake one line naming the array, never a traceback from a backend."""
import numpy as np
import pytest

from tna import netx
from tna.deploy.inputs import load_npy, to_slayer_layout, value_range
from tna.errors import TnaError
from tna.neurons import Cuba


def conv_net(shape=(3, 4, 6), **meta) -> netx.NetxModel:
    layers = [netx.Layer("input", shape),
              netx.Layer("conv", (2, shape[1] - 2, shape[2] - 2),
                         weight=np.full((2, shape[0], 3, 3), 2.0),
                         neuron=Cuba(4096, 4096, 10), in_channels=shape[0],
                         out_channels=2, kernel_size=(3, 3), stride=(1, 1), padding=(0, 0),
                         dilation=(1, 1), groups=1)]
    return netx.NetxModel(layers, netx.Metadata(input_shape=list(shape), **meta) if meta else None)


def test_chw_and_whc_arrays_become_the_same_slayer_array(tmp_path):
    x = np.random.default_rng(0).integers(0, 2, (5, 3, 4, 6, 7))
    model = conv_net()
    np.save(tmp_path / "chw.npy", x)
    np.save(tmp_path / "whc.npy", x.transpose(0, 3, 2, 1, 4))       # netx's (x, y, z)
    np.save(tmp_path / "one.npy", x[0].transpose(2, 1, 0, 3))        # no batch axis
    assert np.array_equal(load_npy(tmp_path / "chw.npy", model), x)
    assert np.array_equal(load_npy(tmp_path / "whc.npy", model), x)
    assert np.array_equal(load_npy(tmp_path / "whc.npy", model, "whc"), x)
    assert np.array_equal(load_npy(tmp_path / "one.npy", model), x[:1])
    with pytest.raises(TnaError, match="not the net's input in chw order.*--input-layout"):
        load_npy(tmp_path / "whc.npy", model, "chw")


def test_an_ambiguous_shape_takes_chw_and_says_so(tmp_path, capsys):
    x = np.ones((2, 3, 5, 3, 4), np.int64)                    # C == W: fits both orders
    model = conv_net((3, 5, 3))
    np.save(tmp_path / "x.npy", x)
    load_npy(tmp_path / "x.npy", model)
    err = capsys.readouterr().err
    assert "fits both" in err and "--input-layout whc" in err and len(err.splitlines()) == 1


def test_flat_and_graph_shaped_inputs_fit_a_dense_first_layer():
    """A NIR graph's Input (1, 28, 28) before a Flatten: the array (N, 1, 28, 28, T) feeds a
    net whose input is flat (784,), flattened in C, H, W order."""
    x = np.arange(2 * 1 * 2 * 3 * 4).reshape(2, 1, 2, 3, 4)
    y = to_slayer_layout(x, (6,), None, "x.npy")
    assert y.shape == (2, 6, 4) and np.array_equal(y, x.reshape(2, 6, 4))
    with pytest.raises(TnaError, match=r"does not fit the net's input 7"):
        to_slayer_layout(x, (7,), None, "x.npy")


def test_values_outside_the_encoding_are_refused(tmp_path):
    model = conv_net(encoding="direct", input_bits=4, input_message_bits=8)
    assert value_range(model, 8)[:2] == (0, 15)
    np.save(tmp_path / "big.npy", np.full((1, 3, 4, 6, 2), 1000))
    with pytest.raises(TnaError, match=r"values 1000..1000, but the net takes 0..15"):
        load_npy(tmp_path / "big.npy", model, input_message_bits=8)
    np.save(tmp_path / "neg.npy", np.full((1, 3, 4, 6, 2), -1))
    with pytest.raises(TnaError, match=r"values -1..-1"):
        load_npy(tmp_path / "neg.npy", model, input_message_bits=8)
    assert value_range(conv_net(), 0)[:2] == (0, 1)            # binary spikes
    enc = conv_net()
    enc.layers[0].neuron = Cuba(4096, 4096, 10)
    assert value_range(enc, 0)[:2] == (-(2**17 - 1), 2**17 - 1)   # an input neuron's a_in
