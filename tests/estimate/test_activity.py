"""Activity counting (tna.estimate.count) against independent counts: the slayer reference's
spikes and synaptic ops, and a brute-force fan-out count of nonzero synapses."""
import numpy as np
import pytest
import torch

from tna import netx
from tna.estimate import EstimateConfig, count, estimate
from tna.neurons import Cuba
from tna.reference import ReferenceNet


def _net(zeros: bool) -> netx.NetxModel:
    rng = np.random.default_rng(0)
    lo = -2 if zeros else 1          # without zeros every weight is in 1..3 (x 64)
    conv_w = 64.0 * rng.integers(lo, 3, (4, 2, 3, 3))
    dense_w = 2.0 * rng.integers(1, 64, (5, 64))
    if zeros:
        dense_w[:, ::3] = 0
    cuba = Cuba(i_decay=1024, v_decay=256, vth_mant=300)
    layers = [netx.Layer("input", (2, 8, 8)),
              netx.Layer("conv", (4, 4, 4), weight=conv_w, neuron=cuba, in_channels=2,
                         out_channels=4, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1),
                         dilation=(1, 1), groups=1),
              netx.Layer("flatten", (64, 1, 1)),
              netx.Layer("dense", (5,), weight=dense_w, neuron=cuba, in_features=64,
                         out_features=5)]
    return netx.NetxModel(layers=layers)


def _inputs(n=7, t=4):
    return np.random.default_rng(3).integers(0, 2, (n, 2, 8, 8, t)) * \
        np.random.default_rng(4).integers(0, 2, (n, 2, 8, 8, t))


@pytest.mark.parametrize("zeros", [False, True])
def test_spikes_and_synops_equal_the_reference(zeros):
    """The reference counts every synapse a spike drives, zero weights included."""
    model, x = _net(zeros=zeros), _inputs()
    act = count(model, x)
    spikes, synops = ReferenceNet(model).activity(torch.tensor(x, dtype=torch.float32))
    assert [act.layers[i].spikes * len(x) for i in (1, 3)] == pytest.approx(spikes)
    assert [act.layers[i].synops * len(x) for i in (1, 3)] == pytest.approx(synops)
    assert act.spikes > 0 and act.synops > 0
    assert (act.synops_nonzero < act.synops) == zeros
    assert act.layers[1].updates == 4 * 4 * 4 * 4 and act.timesteps == 4


def test_synops_count_only_nonzero_synapses():
    """Brute force: every input event drives the nonzero synapses it is connected to."""
    model, x = _net(zeros=True), _inputs()
    act = count(model, x)
    conv, dense = model.layers[1], model.layers[3]
    w = np.asarray(conv.weight)
    events = (x != 0).sum(-1).sum(0)                      # (2, 8, 8) input events
    expected = 0
    for co in range(4):
        for oy in range(4):
            for ox in range(4):
                for ci in range(2):
                    for ky in range(3):
                        for kx in range(3):
                            iy, ix = 2 * oy - 1 + ky, 2 * ox - 1 + kx
                            if 0 <= iy < 8 and 0 <= ix < 8 and w[co, ci, ky, kx] != 0:
                                expected += events[ci, iy, ix]
    assert act.layers[1].synops_nonzero * len(x) == pytest.approx(expected)
    conv_spikes = act.layers[1].spikes_per_neuron.reshape(-1) * len(x)
    fan_out = (np.asarray(dense.weight) != 0).sum(0)          # per input of the dense layer
    assert act.layers[3].synops_nonzero * len(x) == pytest.approx(float(conv_spikes @ fan_out))


def test_cost_sums_cores_and_ranges_are_ordered():
    model, x = _net(zeros=True), _inputs()
    est = estimate(model, EstimateConfig(), count(model, x))
    assert sum(c[1] for c in est.per_core) == pytest.approx(est.activity.synops)
    assert sum(c[2] for c in est.per_core) == pytest.approx(est.activity.synops_nonzero)
    assert sum(c[3] for c in est.per_core) == pytest.approx(est.activity.spikes)
    c = est.cost
    for lo, hi in (c.energy_j, c.inference_s, c.step_s, c.inferences_per_s):
        assert 0 < lo <= hi
    assert "dynamic energy" in est.summary() and "estimate" in est.summary()
    d = est.to_dict()
    assert d["cost_per_inference"]["energy_j"][0] == c.energy_j[0]
    assert d["activity_per_inference"]["synops"] == est.activity.synops
