"""Ternary / binary compression (the paper's Eq. 6) on tensors and on built models."""
import math

import h5py
import numpy as np
import pytest
import torch

from tna.errors import TnaError
from tna.quant import (BinaryConfig, TernaryConfig, binarize_, binary, compression_of,
                       effective_weight, ternarize_, ternary)

ARCH = "16-12-8-out"          # four weight layers: two hidden ones get compressed
IN_SHAPE = (1, 8, 8)


# --------------------------------------------------------------------------- Eq. 6 on tensors

@pytest.mark.parametrize("delta", [0.25, 0.5, 1.0])   # exact in float32
def test_ternary_boundaries(delta):
    above = float(np.nextafter(np.float32(delta), np.float32(10)))
    w = torch.tensor([delta, -delta, above, -above, 0.0, 3.9, -3.9, delta / 2])
    assert ternary(w, delta).tolist() == [0, 0, 1, -1, 0, 1, -1, 0]


def test_ternary_delta_zero_is_sign_with_zero_kept():
    w = torch.tensor([0.0, 1e-30, -1e-30])
    assert ternary(w, 0.0).tolist() == [0, 1, -1]


def test_ternary_boundary_with_float32_delta_tenth():
    # The default delta 0.1 is not exact in binary: a float32 weight holding 0.1 counts as
    # |w| <= delta (torch compares in the tensor's dtype).
    w = torch.tensor([0.1, -0.1], dtype=torch.float32)
    assert ternary(w, 0.1).tolist() == [0, 0]


def test_binary_sign_of_zero_is_plus_one():
    w = torch.tensor([0.0, -0.0, 1e-6, -1e-6, 2.0, -3.0])
    assert binary(w).tolist() == [1, 1, 1, -1, 1, -1]


def test_bad_delta_is_named():
    with pytest.raises(TnaError, match="delta"):
        TernaryConfig(delta=-0.1)
    with pytest.raises(TnaError, match="delta"):
        TernaryConfig(delta=4.0)


# --------------------------------------------------------------------------- on a model

@pytest.fixture(scope="module")
def spec():
    from tna.models.spec import make_spec
    return make_spec(ARCH, IN_SHAPE, 10, input_scale=1 / 15)


def models(spec):
    from tna.models.snn import build_model
    return build_model(spec, seed=3), build_model(spec, seed=4)


def test_ternarize_hidden_layers_only(spec):
    model, twin = models(spec)
    twin_before = {k: v.clone() for k, v in twin.state_dict().items()}
    indices = ternarize_(model, TernaryConfig(delta=0.1))
    blocks = model.synapse_blocks
    assert indices == [1, 2]
    for b in blocks[1:-1]:
        w = effective_weight(b)
        assert set(torch.unique(w).tolist()) == {-1.0, 0.0, 1.0}
        assert compression_of(b) == "ternary"
        # Eq. 6 applied to the latent weights
        latent = b.synapse.weight.detach()
        assert torch.equal(w, torch.where(latent.abs() <= 0.1, 0.0, torch.sign(latent)))
    for b in (blocks[0], blocks[-1]):
        w = effective_weight(b).detach()
        assert compression_of(b) == "8bit"
        values = set(torch.unique(w).tolist())
        assert not values <= {-1.0, 0.0, 1.0}, "first/last layers must keep 8-bit weights"
        ints = w * 64
        assert torch.equal(ints, ints.round()) and ints.min() >= -256 and ints.max() <= 254
        assert len(values) > 3
    # the twin is a separate model and stays 8-bit
    for b in twin.synapse_blocks:
        assert compression_of(b) == "8bit"
        assert len(torch.unique(effective_weight(b))) > 3
    for k, v in twin.state_dict().items():
        assert torch.equal(v, twin_before[k]), k


def test_binarize_hidden_layers(spec):
    model, _ = models(spec)
    assert binarize_(model, BinaryConfig()) == [1, 2]
    for b in model.synapse_blocks[1:-1]:
        assert set(torch.unique(effective_weight(b)).tolist()) == {-1.0, 1.0}
        assert compression_of(b) == "binary"


def test_gradients_reach_latent_weights(spec):
    model, _ = models(spec)
    ternarize_(model, TernaryConfig(delta=0.1))
    model.train()
    x = torch.randint(0, 16, (8, 1, 8, 8, 5)).float()
    y = torch.arange(8) % 10
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    for b in model.synapse_blocks[1:-1]:
        g = b.synapse.weight.grad
        assert g is not None and g.abs().sum() > 0
    # straight-through: a latent step that does not cross delta changes no forward weight
    b = model.synapse_blocks[1]
    before = effective_weight(b).detach().clone()
    with torch.no_grad():
        latent = b.synapse.weight
        far = (latent.abs() - 0.1).abs() > 1e-3
        latent.add_(torch.where(far, torch.sign(latent) * 1e-4, torch.zeros_like(latent)))
    assert torch.equal(effective_weight(b).detach(), before)


def test_lava_dl_export_hdf5_writes_minus64_0_64(spec, tmp_path):
    model, _ = models(spec)
    ternarize_(model, TernaryConfig(delta=0.1))
    with torch.no_grad():
        model(torch.zeros(1, 1, 8, 8, 2))   # slayer learns its neuron shapes on a forward pass
    with h5py.File(tmp_path / "blocks.h5", "w") as f:
        for i, block in enumerate(model.synapse_blocks):
            block.export_hdf5(f.create_group(f"layer/{i}"))
    with h5py.File(tmp_path / "blocks.h5", "r") as f:
        for i in (1, 2):
            assert set(np.unique(f[f"layer/{i}/weight"][()]).tolist()) == {-64.0, 0.0, 64.0}
        first = np.unique(f["layer/0/weight"][()])
        assert len(first) > 3 and np.all(first % 2 == 0)


def test_too_few_layers_to_compress():
    from tna.models.snn import build_model
    from tna.models.spec import make_spec
    model = build_model(make_spec("16-out", IN_SHAPE, 10), seed=0)
    with pytest.raises(TnaError, match="hidden"):
        ternarize_(model)


def test_pow2_scale_is_the_power_of_two_nearest_the_kept_weights():
    from tna.quant import POW2_MAX, POW2_MIN, pow2_scale
    assert pow2_scale(torch.tensor([0.05, 0.3, -0.3])) == 0.25      # mean |w| 0.216 -> 1/4
    assert pow2_scale(torch.tensor([0.05, 0.3, -0.3]), delta=0.1) == 0.25
    assert pow2_scale(torch.tensor([1.2, -1.3])) == 1.0
    assert pow2_scale(torch.tensor([1e-5])) == POW2_MIN
    assert pow2_scale(torch.tensor([3.9])) == POW2_MAX
    assert pow2_scale(torch.zeros(3), delta=0.1) == 1.0              # nothing kept


def test_pow2_ternary_holds_two_levels_and_rebuilds_from_saved_scales():
    from tna.models.snn import build_model
    from tna.models.spec import make_spec
    from tna.quant import (TernaryConfig, compression_scales, effective_weight,
                           ternarize_)
    spec = make_spec("32-32-16-out", (1, 8, 8), 10)
    model = build_model(spec, seed=0)
    ternarize_(model, TernaryConfig(delta=0.1, scale="pow2"))
    scales = compression_scales(model)
    assert len(scales) == 2 and all(s == 2.0 ** round(math.log2(s)) for s in scales)
    for block, s in zip(model.synapse_blocks[1:-1], scales):
        w = effective_weight(block)
        assert set(torch.unique(w).tolist()) <= {-s, 0.0, s}
        assert set(torch.unique(w * 64).tolist()) <= {-64 * s, 0.0, 64 * s}   # integers
    again = build_model(spec, seed=1)         # other weights, the saved scales win
    ternarize_(again, TernaryConfig(delta=0.1, scales=tuple(scales)))
    assert compression_scales(again) == scales
