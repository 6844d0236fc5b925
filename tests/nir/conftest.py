"""Tiny nets for the NIR tests: netx models built by hand, and foreign graphs built with `nir`."""
from types import SimpleNamespace

import numpy as np
import pytest

from tna import netx
from tna.neurons import Cuba

DT = 1e-4     # s per step of the foreign graphs (snnTorch's usual export step)


def cuba(i_decay, v_decay, vth):
    return Cuba(i_decay=i_decay, v_decay=v_decay, vth_mant=vth)


def conv_model(seed=0, readout="voltage") -> netx.NetxModel:
    """input (2, 8, 8) -> ternary conv -> pool as grouped conv -> flatten -> dense -> readout.

    Covers every netx layer type tna writes, decays of 0 and 4096, a scaled first threshold and
    the never-spiking readout.
    """
    rng = np.random.default_rng(seed)
    conv_w = 64.0 * rng.integers(-1, 2, size=(4, 2, 3, 3))
    dense_w = 2.0 * rng.integers(-128, 128, size=(12, 16))
    out_w = 2.0 * rng.integers(-128, 128, size=(3, 12))
    vth_out = netx.NON_SPIKING_VTH_MANT if readout == "voltage" else 40
    layers = [
        netx.Layer("input", (2, 8, 8)),
        netx.Layer("conv", (4, 4, 4), weight=conv_w.astype(np.float32), neuron=cuba(4096, 123, 480),
                   in_channels=2, out_channels=4, kernel_size=(3, 3), stride=(2, 2),
                   padding=(1, 1), dilation=(1, 1), groups=1),
        netx.Layer("conv", (4, 2, 2), weight=np.full((4, 1, 2, 2), 64, np.float32),
                   neuron=cuba(1024, 0, 32), in_channels=4, out_channels=4, kernel_size=(2, 2),
                   stride=(2, 2), padding=(0, 0), dilation=(1, 1), groups=4),
        netx.Layer("flatten", (16, 1, 1)),
        netx.Layer("dense", (12,), weight=dense_w.astype(np.float32), neuron=cuba(0, 4096, 64),
                   in_features=16, out_features=12),
        netx.Layer("dense", (3,), weight=out_w.astype(np.float32), neuron=cuba(4096, 123, vth_out),
                   in_features=12, out_features=3),
    ]
    meta = netx.Metadata(dataset="digits", class_names=["a", "b", "c"], timesteps=5,
                         encoding="direct", input_shape=[2, 8, 8], input_bits=4,
                         input_message_bits=8, readout=readout, reference_accuracy=51.5,
                         reference_split="test:200", weights="ternary", ternary_layers=[1],
                         extra={"arch": "hand-made", "weight_scales": [1.0]})
    return netx.NetxModel(layers=layers, meta=meta)


def dense_model() -> netx.NetxModel:
    """input (20,) -> dense -> dense, spike readout, rate-coded, no tna metadata extras."""
    rng = np.random.default_rng(1)
    layers = [netx.Layer("input", (20,)),
              netx.Layer("dense", (8,), weight=(2.0 * rng.integers(-128, 128, (8, 20))).astype(
                  np.float32), neuron=cuba(410, 41, 100), in_features=20, out_features=8),
              netx.Layer("dense", (4,), weight=(2.0 * rng.integers(-128, 128, (4, 8))).astype(
                  np.float32), neuron=cuba(4096, 4096, 7), in_features=8, out_features=4)]
    meta = netx.Metadata(timesteps=7, encoding="rate", input_shape=[20], input_message_bits=0,
                         readout="spike")
    return netx.NetxModel(layers=layers, meta=meta)


def snn_params(shape, alpha, beta, threshold, dt=DT):
    """CubaLIF parameters as snnTorch's Synaptic exports them: decays alpha, beta per step."""
    tau_syn, tau_mem = np.full(shape, dt / (1 - alpha)), np.full(shape, dt / (1 - beta))
    return dict(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt, v_leak=np.zeros(shape),
                w_in=tau_syn / dt, **({} if threshold is None else
                                      {"v_threshold": np.broadcast_to(threshold, shape).copy()}))


def foreign_graph(seed=0, metadata=None):
    """Input (2, 8, 8) -> Conv2d -> CubaLIF -> Flatten -> Affine -> CubaLIF -> Affine -> CubaLI.

    Built with the `nir` package alone, in snnTorch's conventions, with float weights, decays
    (alpha 0.7, 0.8, beta 0.9, 0.95) that are no multiples of 1/4096 and per-neuron thresholds.
    """
    import nir
    rng = np.random.default_rng(seed)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([2, 8, 8])}),
        "conv": nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0, 0.6, (4, 2, 3, 3)),
                           stride=2, padding=1, dilation=1, groups=1, bias=np.zeros(4)),
        "lif1": nir.CubaLIF(**snn_params((4, 4, 4), 0.7, 0.9, 1.0)),
        "flat": nir.Flatten(input_type={"input": np.array([4, 4, 4])}, start_dim=0),
        "fc1": nir.Affine(weight=rng.normal(0, 0.5, (10, 64)), bias=np.zeros(10)),
        "lif2": nir.CubaLIF(**snn_params((10,), 0.8, 0.95, rng.uniform(0.8, 1.2, 10))),
        "fc2": nir.Affine(weight=rng.normal(0, 0.5, (3, 10)), bias=np.zeros(3)),
        "out": nir.CubaLI(**snn_params((3,), 0.7, 0.9, None)),
        "output": nir.Output(output_type={"output": np.array([3])}),
    }
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])),
                        metadata=metadata or {})


def spikes(n, shape, steps, p=0.3, seed=0):
    return (np.random.default_rng(seed).random((n, *shape, steps)) < p).astype(np.int64)


@pytest.fixture
def call(capsys):
    """call(*argv) -> (exit code, stdout, stderr) of `tna argv` through tna.cli.main."""
    from tna.cli import main

    def run(*argv):
        code = 0
        try:
            main([str(a) for a in argv])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out = capsys.readouterr()
        return code, out.out, out.err
    return run


@pytest.fixture
def error_line():
    """error_line(stderr) -> the one 'error: ...' line, asserting there is nothing else."""
    def check(err: str) -> str:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
        return lines[0]
    return check


@pytest.fixture(scope="session")
def build():
    """The builders above, for the test modules (conftest is not importable under importlib)."""
    return SimpleNamespace(conv_model=conv_model, dense_model=dense_model,
                           foreign_graph=foreign_graph, snn_params=snn_params, spikes=spikes,
                           dt=DT)
