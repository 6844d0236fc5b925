"""The Loihi 2 estimate on every netx file we have: lava-dl's wheel (Intel's own test files),
Intel's Loihi 2 calibration nets, and nets built by hand; through the Python function and the
CLI (`tna inspect --loihi2`), without a traceback, labelled as an estimate."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tna import netx
from tna.estimate import EstimateConfig, count, estimate
from tna.neurons import Cuba

SHARED = Path(__file__).resolve().parents[3] / "shared" / "loihi2"


def _wheel() -> Path | None:
    try:
        import tests.lava.lib.dl.netx as netx_tests      # lava-dl's wheel installs `tests`
    except ImportError:
        return None
    return Path(netx_tests.__file__).parent


def corpus() -> list:
    files = []
    wheel = _wheel()
    if wheel is not None:
        files += sorted(wheel.rglob("*.net"))
    if SHARED.is_dir():
        files += sorted(SHARED.glob("*.net"))
    return files


FILES = corpus()


@pytest.mark.skipif(not FILES, reason="neither lava-dl's netx test files nor ../shared/loihi2")
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name if p.parent.name in ("netx", "loihi2")
                         else f"{p.parent.name}/{p.name}")
def test_every_file_maps_or_says_why(path):
    model = netx.read_net(path)
    for loader in ("tna", "netx"):
        est = estimate(model, EstimateConfig(loader=loader))
        assert est.cores >= 1 or est.problems
        assert est.summary().startswith("Loihi 2 estimate (of Intel's compiler")
        json.dumps(est.to_dict())                           # the report is plain JSON
    out = subprocess.run([sys.executable, "-m", "tna.cli", "inspect", str(path), "--loihi2"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Loihi 2 estimate (of Intel's compiler and chip, not their output)" in out.stdout
    assert "total:" in out.stdout and "Traceback" not in out.stderr


@pytest.mark.skipif(_wheel() is None, reason="lava-dl's netx test files are not installed")
def test_tiny_net_costs_on_random_input(tmp_path):
    """Intel's tiny.net (a conv readout shaped (C, 1, 1)): activity, time and energy from an
    --input array, in the text and the JSON report."""
    path = _wheel() / "tiny.net"
    model = netx.read_net(path)
    shape = netx.input_shape(model)
    x = np.random.default_rng(0).integers(0, 2, (3, *shape, 6))
    np.save(tmp_path / "x.npy", x)
    report = tmp_path / "est.json"
    out = subprocess.run([sys.executable, "-m", "tna.cli", "inspect", str(path), "--loihi2",
                          "--input", str(tmp_path / "x.npy"), "--report", str(report)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "dynamic energy" in out.stdout and "per inference (3 samples, T = 6 steps)" in out.stdout
    d = json.loads(report.read_text())["loihi2_estimate"]
    lo, hi = d["cost_per_inference"]["energy_j"]
    assert 0 < lo < hi and d["cores"] == sum(layer["cores"] for layer in d["layers"])
    act = count(model, x)
    assert d["activity_per_inference"]["synops"] == pytest.approx(act.synops)


def estimate_net_over_one_chip() -> netx.NetxModel:
    rng = np.random.default_rng(0)
    cuba = Cuba(i_decay=0, v_decay=0, vth_mant=64)
    layers = [netx.Layer("input", (2000,))]
    for _ in range(2):       # 2000 inputs x 2000 8-bit neurons: over 100 cores each
        layers.append(netx.Layer("dense", (2000,), weight=2.0 * rng.integers(1, 100, (2000, 2000)),
                                 neuron=cuba))
    return netx.NetxModel(layers=layers)


def test_a_net_over_one_chip_says_so():
    est = estimate(estimate_net_over_one_chip())
    assert est.cores > 128 and est.chips >= 2 and not est.fits_one_chip and not est.problems
    assert "needs more than one chip" in est.summary()


def test_validate_warns_about_more_than_one_chip_and_unmappable_layers(tmp_path):
    big = estimate_net_over_one_chip()
    netx.write_net(big, tmp_path / "big.net")
    wide = netx.NetxModel(layers=[netx.Layer("input", (20000,)), netx.Layer(
        "dense", (4,), weight=np.full((4, 20000), 2.0),
        neuron=Cuba(i_decay=0, v_decay=0, vth_mant=64))])
    netx.write_net(wide, tmp_path / "wide.net")
    for name, expected in (("big.net", "Loihi 2 estimate: the net needs "),
                           ("wide.net", "Loihi 2 estimate: cannot map layer/1 (dense): 20000 "
                                        "inputs need 20000 input axons")):
        out = subprocess.run([sys.executable, "-m", "tna.cli", "validate",
                              str(tmp_path / name)], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr          # netx runs it: a warning, not a problem
        assert f"{tmp_path / name}: warning: {expected}" in out.stdout
