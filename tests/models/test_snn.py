"""Built SNNs: blocks, output shapes, readouts, reproducible init, the CIFARNet preset."""
import pytest
import torch

from tna.models.snn import NON_SPIKING_THRESHOLD, build_model
from tna.models.spec import make_spec


@pytest.mark.parametrize("arch,in_shape,n_blocks", [
    ("mlp", (1, 8, 8), 3),
    ("16-8-out", (1, 8, 8), 3),
    ("4c3s2-8c3s2-16-out", (1, 8, 8), 5),      # conv, conv, flatten, dense, dense
    ("4c3-ap2-8-out", (1, 8, 8), 5),           # conv, pool, flatten, dense, dense
])
@pytest.mark.parametrize("readout", ["voltage", "spike"])
def test_output_shapes(arch, in_shape, n_blocks, readout):
    model = build_model(make_spec(arch, in_shape, 10, readout=readout, input_scale=1 / 15),
                        seed=0).eval()
    assert len(model.blocks) == n_blocks
    x = torch.randint(0, 16, (3, *in_shape, 5)).float()
    logits = model(x)
    assert logits.shape == (3, 10)
    assert torch.isfinite(logits).all()
    if readout == "spike":   # spike counts over T = 5 steps
        assert torch.equal(logits, logits.round()) and logits.min() >= 0 and logits.max() <= 5
    rates = model.layer_activity(x)
    spiking = [layer for layer in model.spec.layers[:-1] if layer.kind != "flatten"]
    assert len(rates) == len(spiking)
    assert all(0 <= r <= 1 for r in rates)


def test_dense_net_accepts_flat_and_image_input():
    model = build_model(make_spec("16-8-out", (1, 8, 8), 10), seed=0).eval()
    x = torch.randint(0, 2, (2, 1, 8, 8, 4)).float()
    assert torch.equal(model(x), model(x.flatten(1, 3)))


def test_voltage_readout_layer_never_spikes():
    model = build_model(make_spec("16-out", (1, 8, 8), 10), seed=0)
    assert float(model.blocks[-1].neuron.threshold) == NON_SPIKING_THRESHOLD
    assert NON_SPIKING_THRESHOLD * 64 == 2**17 - 1
    spike = build_model(make_spec("16-out", (1, 8, 8), 10, readout="spike", threshold=0.5),
                        seed=0)
    assert float(spike.blocks[-1].neuron.threshold) == 0.5


def test_seeded_init_is_reproducible_and_seeds_differ():
    spec = make_spec("4c3-8-out", (1, 8, 8), 10)
    a, b, c = build_model(spec, seed=1), build_model(spec, seed=1), build_model(spec, seed=2)
    for (k, va), vb, _vc in zip(a.state_dict().items(), b.state_dict().values(),
                               c.state_dict().values()):
        assert torch.equal(va, vb), k
    assert any(not torch.equal(va, vc) for va, vc in
               zip(a.state_dict().values(), c.state_dict().values()))


def test_weights_are_8bit_slayer_values():
    model = build_model(make_spec("4c3-ap2-8-out", (1, 8, 8), 10), seed=0)
    from tna.quant import effective_weight
    for block in model.synapse_blocks:
        w = effective_weight(block).detach() * 64
        assert torch.equal(w, w.round()) and w.min() >= -256 and w.max() <= 254
    pool = model.blocks[1]
    assert not pool.synapse.weight.requires_grad
    assert torch.all(effective_weight(pool) * 64 == 16)     # 1/4 * 64


def test_weights_that_drift_past_the_8bit_range_are_clamped_to_it():
    # a 34-epoch fmnist-cpu run drifted one first-layer weight to -4.16 (-266 on Loihi's scale):
    # slayer's default clamp ([-512, 510]) let it through and the exporter refused the net
    from tna.quant import effective_weight
    model = build_model(make_spec("4c3-8-out", (1, 6, 6), 10), seed=0)
    block = model.synapse_blocks[0]
    with torch.no_grad():
        block.synapse.weight.view(-1)[:4] = torch.tensor([-4.16, -7.9, 4.5, 3.96])
    w = effective_weight(block).detach().view(-1)[:4] * 64
    assert w.tolist() == [-256, -256, 254, 254]


def test_cifarnet_builds_and_runs_one_sample():
    spec = make_spec("cifarnet", (3, 32, 32), 10, input_scale=1 / 15)
    model = build_model(spec, seed=0).eval()
    n_weights = sum(p.numel() for p in model.parameters())
    # 3·128·9 + 128·256·9 + 256·512·9 + 512·1024·9 + 1024·512·9 + 32768·1024 + 1024·512 + 512·10
    expect = (3 * 128 + 128 * 256 + 256 * 512 + 512 * 1024 + 1024 * 512) * 9 \
        + 32768 * 1024 + 1024 * 512 + 512 * 10
    weights = sum(b.synapse.weight.numel() for b in model.synapse_blocks
                  if b.synapse.weight.requires_grad)
    assert weights == expect and n_weights >= expect
    with torch.no_grad():
        logits = model(torch.randint(0, 16, (1, 3, 32, 32, 2)).float())
    assert logits.shape == (1, 10) and torch.isfinite(logits).all()
