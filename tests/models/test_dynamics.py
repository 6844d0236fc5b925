"""tna's dynamics paths against slayer's own: forward bit-identical, gradients equal up to exp's
rounding, and the CUDA fallback chooses the PyTorch path when slayer's JIT build fails."""
import pytest
import torch

from tna.models import dynamics
from tna.models.snn import build_model
from tna.models.spec import make_spec

CASES = [("8c3s2-8c3-16-out", (1, 12, 12), 0.25, 0.03),   # convs, flatten, dense
         ("24-16-out", (1, 8, 8), 1.0, 0.03),              # dense; current lasts one step
         ("4c3-ap2-8-out", (2, 6, 6), 0.5, 0.2)]           # a pool block


def forward_backward(impl, spec, x, y, monkeypatch):
    monkeypatch.setenv("TNA_DYNAMICS", impl)
    model = build_model(spec, seed=3).train()
    torch.manual_seed(7)                                    # dropout draws the same mask
    logits = model(x)
    torch.nn.functional.cross_entropy(logits, y).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    return logits.detach(), grads


@pytest.mark.parametrize("arch,shape,cd,vd", CASES)
@pytest.mark.parametrize("impl", ["fused", "torch"])
def test_paths_match_slayer(impl, arch, shape, cd, vd, monkeypatch):
    if impl == "fused" and dynamics.kernel() is None:
        pytest.skip("no C compiler: the fused kernel cannot be built here")
    spec = make_spec(arch, shape, 10, current_decay=cd, voltage_decay=vd, dropout=0.2,
                     tau_grad=0.05, scale_grad=5.0)
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 16, (16, *shape, 5), generator=g).float() / 15
    y = torch.randint(0, 10, (16,), generator=g)
    ref, ref_grads = forward_backward("slayer", spec, x, y, monkeypatch)
    out, grads = forward_backward(impl, spec, x, y, monkeypatch)
    assert torch.equal(out, ref)                 # what is trained is what deploys: exact
    assert any(float(g.abs().max()) > 0 for g in ref_grads)
    for a, b in zip(grads, ref_grads):
        if impl == "torch":
            assert torch.equal(a, b)
        else:   # libm's expf vs torch's vectorised exp: ~1 ulp of the surrogate
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6 * float(b.abs().max()))


def test_time_major_training_path_covers_convs_and_dense_but_not_pools():
    # what test_paths_match_slayer compares in train mode is the time-major path (tna.models.snn)
    nets = {arch: build_model(make_spec(arch, shape, 10), seed=0) for arch, shape, *_ in CASES}
    assert [net._time_major_ok() for net in nets.values()] == [True, True, False]


@pytest.mark.parametrize("readout", ["voltage", "spike"])
def test_time_major_path_matches_slayer_with_ternary_weights(readout, monkeypatch):
    if dynamics.kernel() is None:
        pytest.skip("no C compiler")
    from tna.quant import TernaryConfig, ternarize_
    spec = make_spec("6c3s2-12c3s2-8c3-32-24-out", (2, 16, 16), 10, readout=readout,
                     dropout=0.2, tau_grad=0.05, scale_grad=5.0, threshold=0.3)
    g = torch.Generator().manual_seed(2)
    x = (torch.randint(0, 16, (12, 2, 16, 16, 1), generator=g).float() / 15).expand(
        -1, -1, -1, -1, 6)                                 # direct input: constant in time
    y = torch.randint(0, 10, (12,), generator=g)
    results = []
    for impl in ("slayer", "fused"):
        monkeypatch.setenv("TNA_DYNAMICS", impl)
        model = build_model(spec, seed=5).train()
        ternarize_(model, TernaryConfig(0.05, "pow2"))
        torch.manual_seed(9)
        logits = model(x)
        torch.nn.functional.cross_entropy(logits, y).backward()
        results.append((logits.detach(), [p.grad for p in model.parameters() if p.requires_grad]))
    (ref, ref_grads), (out, grads) = results
    assert torch.equal(out, ref) and out.abs().sum() > 0
    for a, b in zip(grads, ref_grads):
        assert float(b.abs().max()) > 0
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6 * float(b.abs().max()))


def test_fused_spikes_and_voltage_are_slayers_on_large_inputs(monkeypatch):
    if dynamics.kernel() is None:
        pytest.skip("no C compiler")
    from lava.lib.dl.slayer.block.cuba import Dense
    block = Dense({"threshold": 0.5, "current_decay": 0.3, "voltage_decay": 0.1}, 4, 64,
                  weight_scale=4)
    z = torch.randn(8, 64, 7) * 3               # voltages far above and below threshold
    assert torch.equal(dynamics.spikes(block.neuron, z, "fused"), block.neuron(z))
    assert torch.equal(dynamics.voltage(block.neuron, z, "fused"), block.neuron.dynamics(z)[1])


def test_cuda_falls_back_to_the_pytorch_path_when_the_jit_build_fails(monkeypatch, capsys):
    from lava.lib.dl.slayer.neuron.dynamics import leaky_integrator

    def broken(*a, **k):
        raise RuntimeError("Error building extension 'dynamics': nvcc not found")

    monkeypatch.setattr(leaky_integrator, "load", broken)
    monkeypatch.setattr(leaky_integrator.Accelerated, "module", None)
    monkeypatch.setattr(leaky_integrator.torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv("TNA_DYNAMICS", raising=False)
    monkeypatch.setattr(dynamics, "_chosen", {})
    assert dynamics.select("cuda") == "torch"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "PyTorch path" in err and "nvcc" in err
    assert dynamics.select("cuda") == "torch" and capsys.readouterr().err == ""   # once


def test_forcing_a_path(monkeypatch):
    from tna.errors import TnaError
    monkeypatch.setenv("TNA_DYNAMICS", "torch")
    assert dynamics.select("cpu") == "torch"
    monkeypatch.setenv("TNA_DYNAMICS", "fused")
    assert dynamics.select("cuda") == "torch"   # the C kernel is CPU-only
    monkeypatch.setenv("TNA_DYNAMICS", "fast")
    with pytest.raises(TnaError, match="TNA_DYNAMICS"):
        dynamics.select("cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("impl", ["slayer", "torch"])
def test_gpu_paths_match_the_cpu(impl, monkeypatch):
    spec = make_spec("8c3s2-16-out", (1, 12, 12), 10, dropout=0.0)
    x = torch.randint(0, 16, (16, 1, 12, 12, 5)).float() / 15
    monkeypatch.setenv("TNA_DYNAMICS", "slayer")
    ref = build_model(spec, seed=0).eval()(x)
    monkeypatch.setenv("TNA_DYNAMICS", impl)
    out = build_model(spec, seed=0).cuda().eval()(x.cuda()).cpu()
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-4)


def test_constant_input_computes_the_first_synapse_once_with_the_same_result(monkeypatch):
    # direct encoding: the same image every step; the first conv runs on one step only
    spec = make_spec("8c3s2-16-out", (1, 12, 12), 10, dropout=0.0)
    x = (torch.randint(0, 16, (16, 1, 12, 12, 1)).float() / 15).expand(-1, -1, -1, -1, 5)
    monkeypatch.setenv("TNA_DYNAMICS", "slayer")
    ref = build_model(spec, seed=0).eval()(x)
    monkeypatch.setenv("TNA_DYNAMICS", "torch")
    torch.testing.assert_close(build_model(spec, seed=0).eval()(x), ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("forced", [None, "fused", "torch", "slayer"])
def test_learned_decays_get_gradients_on_every_path_and_stay_on_the_grid(forced, monkeypatch):
    """With learn_decays each layer's current and voltage decay is a parameter with a
    gradient on every path, clamped to [0, 4096] in the forward pass."""
    if forced:
        monkeypatch.setenv("TNA_DYNAMICS", forced)
    else:
        monkeypatch.delenv("TNA_DYNAMICS", raising=False)
    spec = make_spec("8c3s2-16-out", (1, 8, 8), 10, current_decay=0.5, voltage_decay=0.1,
                     learn_decays=True)
    model = build_model(spec, seed=0).train()
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 16, (8, 1, 8, 8, 5), generator=g).float() / 15
    y = torch.randint(0, 10, (8,), generator=g)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    decays = [(n, p) for n, p in model.named_parameters() if n.endswith("_decay")]
    assert len(decays) == 6                          # current and voltage, per neuron layer
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for _, p in decays)
    with torch.no_grad():                            # an update off the grid and past 4096
        for _, p in decays:
            p.add_(5000.3)
    model.eval()
    model(x)
    for block in model.blocks:
        if getattr(block, "neuron", None) is not None:
            assert int(block.neuron.cx_current_decay) == 4096     # clamped in the forward pass
            assert float(block.neuron.current_decay) == 4096.0


@pytest.mark.parametrize("arch,shape", [("8c3s2-16-out", (1, 8, 8)), ("24-16-out", (1, 6, 6))])
def test_learned_decay_gradients_match_slayers_on_the_fused_path(arch, shape, monkeypatch):
    """The fused kernel's decay gradients (computed beside it, _decay_grads) are slayer's
    leaky-integrator gradients: equal up to float rounding (the training path on CPU, which is
    time-major for these nets); the torch path's are slayer's exactly."""
    if dynamics.kernel() is None:
        pytest.skip("no C compiler: the fused kernel cannot be built here")
    spec = make_spec(arch, shape, 10, current_decay=0.5, voltage_decay=0.1, dropout=0.0,
                     learn_decays=True, tau_grad=0.05, scale_grad=5.0)
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, 16, (16, *shape, 5), generator=g).float() / 15
    y = torch.randint(0, 10, (16,), generator=g)

    def decay_grads(impl):
        monkeypatch.setenv("TNA_DYNAMICS", impl)
        model = build_model(spec, seed=3).train()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        return [p.grad for n, p in model.named_parameters() if n.endswith("_decay")]

    ref = decay_grads("slayer")
    assert any(float(r.abs().max()) > 0 for r in ref)
    for a, b in zip(decay_grads("torch"), ref):
        assert torch.equal(a, b)
    for a, b in zip(decay_grads("fused"), ref):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4 * float(b.abs().max()) + 1e-6)
