"""Parity on hardware: Loihi 2 (marker loihi2) and the emulator on CUDA (marker gpu).

Both skip with the reason when the hardware is absent; where it exists they run the same
checks as the simulator tests: every output spike and voltage equal to the reference.
"""
import numpy as np
import pytest

from tna import netx
from tna.neurons import Cuba


def _loihi2_reason():
    try:
        from tna.lava.runner import _loihi2_available
        from tna.lava.info import prepare_lava_import
        prepare_lava_import()
        return None if _loihi2_available() else (
            "no Loihi 2: needs lava-loihi (Intel INRC, not on PyPI) and a board reachable "
            "through SLURM (sinfo)")
    except ImportError as e:
        return f"no Loihi 2: {e}"


def _tiny_net(path):
    rng = np.random.default_rng(0)
    hidden = Cuba(i_decay=1024, v_decay=123, vth_mant=32)
    readout = Cuba(i_decay=1024, v_decay=123, vth_mant=netx.NON_SPIKING_VTH_MANT)
    w1 = (rng.integers(-20, 40, (24, 16)) * 2).astype(np.float32)
    w2 = (rng.integers(-30, 30, (5, 24)) * 2).astype(np.float32)
    model = netx.NetxModel([
        netx.Layer("input", (16,)),
        netx.Layer("dense", (24,), weight=w1, neuron=hidden, in_features=16, out_features=24),
        netx.Layer("dense", (5,), weight=w2, neuron=readout, in_features=24, out_features=5)],
        netx.Metadata(dataset="", timesteps=5, encoding="direct", input_shape=[16],
                      input_message_bits=8, readout="voltage"))
    netx.write_net(model, path)
    return model, rng.integers(0, 16, (30, 16, 5))


@pytest.mark.loihi2
def test_loihi2_matches_reference(tmp_path):
    reason = _loihi2_reason()
    if reason:
        pytest.skip(reason)
    from tna.deploy import RunConfig, run
    model, x = _tiny_net(tmp_path / "t.net")
    np.save(tmp_path / "x.npy", x)
    result = run(tmp_path / "t.net", RunConfig(backend="loihi2", input=str(tmp_path / "x.npy"),
                                               compare="reference,loihi2", progress=False))
    assert result.ok, result.summary()


@pytest.mark.gpu
def test_emulator_on_cuda_matches_cpu(tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device visible")
    from tna.sim import emulate
    model, x = _tiny_net(tmp_path / "t.net")
    cpu = emulate(model, x, input_message_bits=8, record=("spikes", "u", "v"))
    gpu = emulate(model, torch.as_tensor(x).cuda(), input_message_bits=8,
                  record=("spikes", "u", "v"))
    assert torch.equal(cpu.out_voltage, gpu.out_voltage.cpu())
    assert torch.equal(cpu.out_spikes, gpu.out_spikes.cpu())
