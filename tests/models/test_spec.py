"""Architecture spec strings and presets: layers, shapes and errors (no torch needed)."""
import pytest

from tna.errors import TnaError
from tna.models.spec import PRESETS, ModelSpec, make_spec, parse_arch

PAPER_CIFARNET = "128C3-256C3-AP2-512C3-AP2-1024C3-512C3-1024FC-512FC-Out"


def kinds(layers):
    return [(layer.kind, layer.out, layer.out_shape) for layer in layers]


def test_cifarnet_is_the_papers_net():
    layers = parse_arch("cifarnet", (3, 32, 32), 10)
    assert kinds(layers) == [
        ("conv", 128, (128, 32, 32)),
        ("conv", 256, (256, 32, 32)),
        ("pool", 256, (256, 16, 16)),
        ("conv", 512, (512, 16, 16)),
        ("pool", 512, (512, 8, 8)),
        ("conv", 1024, (1024, 8, 8)),
        ("conv", 512, (512, 8, 8)),
        ("flatten", 512 * 8 * 8, (512 * 8 * 8,)),
        ("dense", 1024, (1024,)),
        ("dense", 512, (512,)),
        ("dense", 10, (10,)),
    ]
    assert all(layer.kernel == 3 and layer.stride == 1 and layer.padding == 1
               for layer in layers if layer.kind == "conv")
    assert all(layer.kernel == 2 and layer.stride == 2 for layer in layers if layer.kind == "pool")
    # the paper's string, as written, is the same net
    assert parse_arch(PAPER_CIFARNET, (3, 32, 32), 10) == layers


def test_mlp_preset_on_digits():
    layers = parse_arch("mlp", (1, 8, 8), 10)
    # a net that starts dense gets flattened input: no flatten layer
    assert kinds(layers) == [("dense", 256, (256,)), ("dense", 128, (128,)),
                             ("dense", 10, (10,))]
    assert layers[0].in_shape == (64,)


def test_conv_small_preset_on_fashion_mnist():
    layers = parse_arch("conv-small", (1, 28, 28), 10)
    assert kinds(layers) == [
        ("conv", 16, (16, 14, 14)), ("conv", 32, (32, 7, 7)), ("conv", 64, (64, 7, 7)),
        ("flatten", 64 * 49, (64 * 49,)), ("dense", 256, (256,)), ("dense", 10, (10,))]


def test_stride_padding_pool_and_final_number():
    layers = parse_arch("4c3s2p0-8c3-ap2-12", (2, 9, 9), 12)
    assert kinds(layers) == [("conv", 4, (4, 4, 4)), ("conv", 8, (8, 4, 4)),
                             ("pool", 8, (8, 2, 2)), ("flatten", 32, (32,)),
                             ("dense", 12, (12,))]
    assert (layers[0].stride, layers[0].padding) == (2, 0)


def test_shapes_chain():
    for name in PRESETS:
        shape = (3, 32, 32)
        layers = parse_arch(name, shape, 10)
        for prev, cur in zip(layers, layers[1:]):
            assert cur.in_shape == prev.out_shape


@pytest.mark.parametrize("arch,match", [
    ("", "empty"),
    ("16-out-8-out", "'out' must be the last"),
    ("16-11", "ends in 11 outputs"),
    ("16x3-out", "cannot read layer '16x3'"),
    ("16-4c3-out", "conv '4c3' after a dense"),
    ("ap3-out", "pool 'ap3'"),                   # 8 is not a multiple of 3
    ("4c9s1p0-out", "empty output"),             # 9x9 kernel on 8x8 without padding
    ("4c3-0-out", "at least 1 neuron"),
    ("4c3", "must end in a dense layer"),
])
def test_bad_specs_are_named(arch, match):
    with pytest.raises(TnaError, match=match):
        parse_arch(arch, (1, 8, 8), 10)


def test_bad_readout():
    with pytest.raises(TnaError, match="readout"):
        make_spec("mlp", (1, 8, 8), 10, readout="rate")


def test_model_spec_round_trips_through_dict():
    spec = make_spec("4c3-ap2-8-out", (1, 8, 8), 10, threshold=0.7, readout="spike",
                     input_scale=1 / 15)
    d = spec.to_dict()
    assert "layers" not in d and d["in_shape"] == [1, 8, 8]
    back = ModelSpec.from_dict(d)
    assert back == spec and back.layers == spec.layers
