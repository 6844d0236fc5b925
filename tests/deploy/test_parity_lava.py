"""Parity of exported nets: the PyTorch reference, tna's emulator and the REAL Lava simulator
agree exactly, and the parity check reports a mismatch when there is one.

Nets are trained for one quick epoch on digits and exported with `tna.export`, one per kind:
dense / conv / average pool exported as a grouped conv; graded (direct) or binary (rate) input;
voltage or spike readout.
"""
import shutil

import h5py
import numpy as np
import pytest

from tna import netx
from tna.deploy import RunConfig, run
from tna.deploy.backends import BACKENDS, Job
from tna.deploy.parity import compare
from tna.deploy.runner import RunResult
from tna.export import ExportConfig, export
from tna.neurons import Cuba

LAVA_SAMPLES = 12
BASE = dict(dataset="digits", method="single", epochs=1, ternary_after=0, batch_size=32,
            limit=96, eval_batch_size=500, augment=False, progress=False, weights="ternary")
NETS = {
    "dense-graded-voltage": dict(arch="16-12-out"),
    "conv-graded-spike": dict(arch="4c3s2-8c3s2-16-out", readout="spike"),
    "pool-graded-voltage": dict(arch="4c3-ap2-8-out"),
    "pool-rate-spike": dict(arch="4c3-ap2-8-out", encoding="rate", readout="spike"),
    # the defaults use pow2 ternary scales and current decay 1.0; the paper's ±1 and a current
    # that decays over several steps stay covered
    "conv-paper-ternary": dict(arch="4c3s2-8c3-16-out", ternary_scale="one",
                               current_decay=0.25),
    # a larger pow2 scale: hidden weights {-2, 0, 2}, i.e. ±128 on Loihi
    "dense-pow2-wide": dict(arch="24-24-out", weight_scale=12.0),
}


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    """name -> exported .net path, trained and exported on first use."""
    from tna.train import TrainConfig, train
    cache = {}

    def get(name):
        if name not in cache:
            folder = tmp_path_factory.mktemp(name)
            best = train(TrainConfig(**BASE, **NETS[name], out=str(folder / "run")))
            cache[name] = export(best, ExportConfig(out=str(folder / f"{name}.net"), limit=20,
                                                    verify=False, progress=False))
        return cache[name]

    return get


@pytest.mark.lava
@pytest.mark.parametrize("name", list(NETS))
def test_reference_emulator_and_lava_agree_exactly(nets, name, tmp_path):
    path = nets(name)
    meta = netx.read_net(path).meta
    result = run(path, RunConfig(compare="reference,emulator,lava-sim", limit=LAVA_SAMPLES,
                                 report=str(tmp_path / "parity.json"), progress=False))
    assert list(result.outputs) == ["reference", "emulator", "lava-sim"]
    assert result.samples == LAVA_SAMPLES
    ref = result.outputs["reference"]
    T = meta.timesteps
    assert ref.spikes.shape == (LAVA_SAMPLES, 10, T)
    for other in ("emulator", "lava-sim"):
        out = result.outputs[other]
        assert out.spikes.shape == ref.spikes.shape
        assert np.array_equal(out.spikes, ref.spikes), other
        assert np.array_equal(out.logits, ref.logits), other
        assert np.array_equal(out.logits.argmax(1), ref.logits.argmax(1))
        if meta.readout == "voltage":
            assert np.array_equal(out.voltage, ref.voltage), other
    for row in result.parity:
        assert row["spike_values_differing"] == 0 and row["samples_differing"] == 0, row
        assert row["prediction_agreement"] == LAVA_SAMPLES and row["first_divergent_step"] is None
        if meta.readout == "voltage":
            assert row["voltage_values_differing"] == 0
        assert row["accuracy_difference"] == 0.0
    assert result.ok and "PARITY HOLDS" in result.summary()
    assert (tmp_path / "parity.json").is_file()

    # The comparison means something only if the nets are active.
    counts = list(result.layer_counts["reference"].values())
    assert all(c > 0 for c in counts[:-1]), counts
    assert result.layer_counts["reference"] == result.layer_counts["emulator"]
    for row in result.parity:          # every layer the pair reads, named
        layers = row["spike_values_differing_by_layer"]
        assert set(layers.values()) == {0} and all(k.startswith("layer/") for k in layers)
        assert len(layers) == (1 if row["b"] == "lava-sim" else len(counts))
    if meta.readout == "spike":
        assert ref.spikes.sum() > 0, "the spike readout layer never spiked"
    else:
        assert ref.spikes.sum() == 0 and np.abs(ref.voltage).sum() > 0
        assert len(np.unique(ref.logits)) > 1
    assert meta.encoding == ("rate" if "rate" in name else "direct")
    assert meta.input_message_bits == (0 if "rate" in name else 8)


def _corrupt_copy(path, dst):
    """Copy `path` and add 40 to one output-layer weight fed by the busiest hidden neuron."""
    import torch

    from tna.reference import ReferenceNet
    model = netx.read_net(path)
    ref = ReferenceNet(model)
    x = _inputs(path, 8)
    with torch.no_grad():
        h = torch.as_tensor(x, dtype=torch.float32)
        for block in ref.blocks[:-1]:
            h = block(h)
    busiest = int(h.sum((0, 2)).argmax())
    shutil.copy(path, dst)
    last = f"layer/{len(model.layers) - 1}/weight"
    with h5py.File(dst, "a") as f:
        w = f[last][()]
        w[3, busiest] = w[3, busiest] + 40 if w[3, busiest] < 200 else w[3, busiest] - 40
        f[last][...] = w
    return dst


def _inputs(path, n):
    from tna.deploy.inputs import dataset_inputs
    x, _ = dataset_inputs(netx.read_net(path), RunConfig(limit=n))
    return x


def _job(path, x):
    model = netx.read_net(path)
    return Job(net_path=str(path), model=model, inputs=x, readout=model.meta.readout,
               input_message_bits=model.meta.input_message_bits, progress=False)


@pytest.mark.parametrize("backend", ["emulator", pytest.param("lava-sim", marks=pytest.mark.lava)])
def test_parity_detects_one_corrupted_weight(nets, tmp_path, backend):
    path = nets("dense-graded-voltage")
    bad = _corrupt_copy(path, tmp_path / "bad.net")
    x = _inputs(path, 8)
    reference = BACKENDS["reference"].run(_job(path, x))      # built from the original file
    same = BACKENDS[backend].run(_job(path, x))
    corrupted = BACKENDS[backend].run(_job(bad, x))

    good = compare(reference, same, None)
    assert good["samples_differing"] == 0 and good["voltage_values_differing"] == 0

    row = compare(reference, corrupted, None)
    assert row["voltage_values_differing"] > 0
    assert row["samples_differing"] > 0 and row["first_divergent_step"] is not None
    result = RunResult(net=str(bad), backend=backend, samples=len(x),
                       outputs={"reference": reference, backend: corrupted}, parity=[row],
                       accuracy={}, layer_counts={}, tolerance=0.0)
    assert not result.ok and "PARITY FAILS" in result.summary()
    # a tolerance above the share of differing samples lets it pass: the threshold is real
    assert RunResult(**{**result.__dict__, "tolerance": 100.0}).ok


def _overflowing_net(tmp_path):
    """One dense layer whose current overflows Lava's 24-bit u on graded input 255.

    a = 4 inputs * 255 * weight 254 = 259,080; u = a << 6 = 16.6 M > 2**23: Lava (and the
    emulator) wrap it, the slayer reference does not, so the outputs must differ.
    """
    layers = [netx.Layer("input", (4,)),
              netx.Layer("dense", (2,), weight=np.full((2, 4), 254, np.float32),
                         neuron=Cuba(i_decay=0, v_decay=0,
                                                  vth_mant=netx.VTH_MANT_MAX),
                         in_features=4, out_features=2)]
    path = netx.write_net(netx.NetxModel(layers), tmp_path / "overflow.net")
    x = np.zeros((3, 4, 5), np.int64)
    x[0] = 255                 # overflows
    x[1] = 1                   # does not
    np.save(tmp_path / "x.npy", x)
    return path, tmp_path / "x.npy"


@pytest.mark.parametrize("compare_list", [
    "reference,emulator",
    pytest.param("reference,emulator,lava-sim", marks=pytest.mark.lava),
])
def test_cli_run_exits_1_when_parity_fails(tmp_path, capsys, compare_list):
    from tna.cli import main
    net, x = _overflowing_net(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["run", str(net), "--backend", "emulator", "--compare", compare_list,
              "--input", str(x), "--readout", "voltage", "--input-message-bits", "8",
              "--report", str(tmp_path / "p.json"), "--no-progress"])
    out = capsys.readouterr().out
    assert e.value.code == 1
    assert "PARITY FAILS" in out
    import json
    report = json.loads((tmp_path / "p.json").read_text())
    assert report["parity_holds"] is False
    for row in report["parity"]:
        assert row["samples_differing"] == 1           # only the overflowing sample
        assert row["voltage_values_differing"] > 0
    if "lava-sim" in compare_list:
        # Lava wraps exactly like the emulator: those two agree
        r = run(net, RunConfig(compare="emulator,lava-sim", input=str(x), readout="voltage",
                               input_message_bits=8, progress=False))
        assert r.ok


def test_cli_run_exits_0_when_parity_holds(nets, capsys):
    from tna.cli import main
    with pytest.raises(SystemExit) as e:
        main(["run", str(nets("dense-graded-voltage")), "--backend", "emulator",
              "--limit", "20", "--no-progress"])
    assert e.value.code == 0
    assert "PARITY HOLDS (exact)" in capsys.readouterr().out
