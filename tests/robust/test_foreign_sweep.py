"""Every foreign netx file we have, through the commands a user tries first: no false alarms.

The files: Intel's netx files in the lava-dl wheel (tiny, mnist, PilotNet LIF and SDNN,
ntidigits), Intel's Loihi 2 calibration nets in ../shared/loihi2 (when present), and nets built
here with the structures those files use (a dense readout without a neuron group, a conv
readout shaped (C, 1, 1), 1- and 3-entry dense shapes, bias, delays, a readout that never
spikes). None carries tna metadata. For each: `validate`, `inspect`, `inspect --measure
--input`, `run --input` (emulator against the reference, `--readout voltage --save-output`),
`export --out x.nir`, and on the small ones `run --compare emulator,lava-sim`. Each gives a
correct result, or one `error:` line that names only options its command has (EXPECTED_ERRORS
lists every such refusal); parity verdicts hold wherever two backends run.

Below the sweep: one regression test per false alarm the sweep found (issue 35).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tna import netx
from tna.netx import Layer, NetxModel, conv_output_shape
from tna.neurons import Cuba

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "loihi2"          # Intel's calibration nets, beside the repo
SAMPLES, STEPS = 2, 6                              # small: the sweep runs every command per file

WHEEL = None
try:
    import tests.lava.lib.dl.netx as _netx_tests             # lava-dl's wheel ships them
    WHEEL = Path(_netx_tests.__file__).parent
except ImportError:
    pass

WHEEL_FILES = {"tiny": "tiny.net", "mnist": "mnist.net",
               "pilotnet_lif": "gts/pilotnet_lif/network.net",
               "pilotnet_sdnn": "gts/pilotnet_sdnn/network.net",
               "pilotnet_sdnn_square": "gts/pilotnet_sdnn/square_network.net",
               "ntidigits": "gts/ntidigits/ntidigits.net"}
SHARED_FILES = ("netx-mnist", "oxford", "pilotnet-sdnn")


# --------------------------------------------------------------------------- hand-built nets
HIDDEN = Cuba(i_decay=1024, v_decay=512, vth_mant=40)


def _dense(n_in, n_out, rng, neuron=HIDDEN, shape=None, **kw) -> Layer:
    w = 2 * rng.integers(-50, 60, (n_out, n_in))
    return Layer("dense", shape or (n_out,), weight=w.astype(np.float32), neuron=neuron,
                 in_features=n_in, out_features=n_out, **kw)


def _conv(in_shape, c_out, k, rng, neuron=HIDDEN, **kw) -> Layer:
    w = 2 * rng.integers(-40, 50, (c_out, in_shape[0], k, k))
    layer = Layer("conv", (), weight=w.astype(np.float32), neuron=neuron,
                  in_channels=in_shape[0], out_channels=c_out, kernel_size=(k, k),
                  stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1, **kw)
    layer.shape = conv_output_shape(layer, in_shape)
    return layer


def hand_nets() -> dict:
    """name -> NetxModel without tna metadata, one per structure foreign files use."""
    r = np.random.default_rng(0)
    c1 = _conv((2, 5, 5), 4, 3, r)
    never = Cuba(i_decay=4096, v_decay=300, vth_mant=netx.NON_SPIKING_VTH_MANT)
    return {
        "dense_readout_no_neuron": [Layer("input", (8,)), _dense(8, 6, r),
                                    _dense(6, 4, r, neuron=None)],
        "conv_readout_c11": [Layer("input", (2, 5, 5)), c1, _conv(c1.shape, 5, 3, r)],
        "dense_shapes_1_and_3": [Layer("input", (8,)), _dense(8, 6, r, shape=(6, 1, 1)),
                                 _dense(6, 4, r)],
        "bias": [Layer("input", (8,)),
                 _dense(8, 6, r, bias=r.integers(-30, 30, 6).astype(np.float32)),
                 _dense(6, 4, r, bias=r.integers(-30, 30, 4).astype(np.float32))],
        "delays": [Layer("input", (8,)),
                   _dense(8, 6, r, delay=r.integers(0, 3, 6).astype(np.float32)),
                   _dense(6, 4, r)],
        "readout_never_spikes": [Layer("input", (8,)), _dense(8, 6, r),
                                 _dense(6, 4, r, neuron=never)],
    }


def _files() -> list:
    params = []
    for name, rel in WHEEL_FILES.items():
        params.append(pytest.param(
            f"wheel:{name}", id=name, marks=pytest.mark.skipif(
                WHEEL is None or not (WHEEL / rel).is_file(),
                reason=f"lava-dl's netx test file {rel} is not installed")))
    for name in SHARED_FILES:
        params.append(pytest.param(
            f"shared:{name}", id=f"loihi2-{name}", marks=pytest.mark.skipif(
                not (SHARED / f"{name}.net").is_file(),
                reason=f"{SHARED / name}.net is absent (../shared beside the repo)")))
    params += [pytest.param(f"hand:{name}", id=name) for name in hand_nets()]
    return params


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    """'wheel:tiny' | 'shared:oxford' | 'hand:bias' -> (the .net path, a random input .npy)."""
    root = tmp_path_factory.mktemp("foreign")
    cache = {}

    def get(key):
        if key in cache:
            return cache[key]
        kind, name = key.split(":")
        if kind == "wheel":
            path = WHEEL / WHEEL_FILES[name]
        elif kind == "shared":
            path = SHARED / f"{name}.net"
        else:
            path = netx.write_net(NetxModel(hand_nets()[name]), root / f"{name}.net")
        cache[key] = path, random_input(netx.read_net(path), root / f"{name}_x.npy")
        return cache[key]
    return get


def random_input(model: NetxModel, path: Path, samples=SAMPLES, steps=STEPS,
                 seed=1) -> Path:
    """Random integers the net takes (graded 0..255 into an input neuron, else binary
    spikes), in netx's (W, H, C) order for image inputs, as net.inp.shape gives it."""
    from tna.deploy.inputs import value_range
    rng = np.random.default_rng(seed)
    try:
        shape = netx.input_shape(model)
    except Exception:          # a file tna refuses anyway: any input will do
        shape = (1,)
    _, hi, _ = value_range(model, 0)
    x = rng.integers(0, min(hi, 255) + 1, (samples, *shape, steps))
    if len(shape) == 3:
        x = x.transpose(0, 3, 2, 1, 4)
    np.save(path, x)
    return path


# Every refusal the sweep expects: (file, command) -> what its one error line says. Any other
# file and command must succeed.
SDNN = "'SDNN'"
EXPECTED_ERRORS = {
    ("pilotnet_sdnn", "measure"): SDNN, ("pilotnet_sdnn", "run"): SDNN,
    ("pilotnet_sdnn", "voltage"): SDNN, ("pilotnet_sdnn", "nir"): SDNN,
    ("pilotnet_sdnn_square", "measure"): SDNN, ("pilotnet_sdnn_square", "run"): SDNN,
    ("pilotnet_sdnn_square", "voltage"): SDNN, ("pilotnet_sdnn_square", "nir"): SDNN,
    ("loihi2-pilotnet-sdnn", "measure"): SDNN, ("loihi2-pilotnet-sdnn", "run"): SDNN,
    ("loihi2-pilotnet-sdnn", "voltage"): SDNN, ("loihi2-pilotnet-sdnn", "nir"): SDNN,
    ("ntidigits", "measure"): "'average'", ("ntidigits", "run"): "'average'",
    ("ntidigits", "voltage"): "'average'", ("ntidigits", "nir"): "'average'",
    ("delays", "nir"): "axonal delays",
}
INVALID = {"ntidigits"}            # netx cannot load it: validate lists the problem, exit 1


def _id(key: str) -> str:
    kind, name = key.split(":")
    return f"loihi2-{name}" if kind == "shared" else name


def _check(key, what, argv, code, out, err, unknown_options) -> bool:
    """True when the command succeeded; else it must be the expected one-line refusal."""
    assert "Traceback" not in out + err, err
    assert not unknown_options(argv, out + err), "a message names options its command lacks"
    expected = EXPECTED_ERRORS.get((_id(key), what))
    if expected is None:
        assert code == 0, f"{what}: exit {code}\n{out}\n{err}"
        return True
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(lines) == 1 and expected in lines[0], (code, err)
    return False


@pytest.mark.parametrize("key", _files())
def test_validate_and_inspect(key, foreign, cli, unknown_options):
    net, x = foreign(key)
    code, out, err = cli("validate", net)
    assert "Traceback" not in out + err and not unknown_options(["validate"], out + err)
    if _id(key) in INVALID:
        assert code == 1 and out.splitlines()[-1].endswith("problem(s)"), out
    else:
        assert code == 0 and out.splitlines()[-1].startswith(f"{net}: valid ("), out
    if _id(key) not in INVALID:
        code, out, err = cli("inspect", net)
        assert code == 0 and "total:" in out and not unknown_options(["inspect"], out + err)
    argv = ["inspect", net, "--measure", "--input", x]
    code, out, err = cli(*argv)
    if _check(key, "measure", argv, code, out, err, unknown_options):
        assert f"per inference ({SAMPLES} samples of {x})" in out, out


@pytest.mark.parametrize("key", _files())
def test_run_emulator_against_the_reference(key, foreign, cli, unknown_options):
    net, x = foreign(key)
    argv = ["run", net, "--backend", "emulator", "--input", x, "--no-progress"]
    code, out, err = cli(*argv)
    if _check(key, "run", argv, code, out, err, unknown_options):
        assert out.splitlines()[-1] in ("PARITY HOLDS (exact)",
                                        "NO PARITY VERDICT: only emulator ran, nothing was "
                                        "compared (--compare A,B runs two backends)"), out
        if "reference vs emulator" in out:
            assert f"predictions agree {SAMPLES}/{SAMPLES} (100.00%)" in out, out


@pytest.mark.parametrize("key", _files())
def test_run_voltage_readout_saves_the_voltage(key, foreign, unknown_options, tmp_path):
    """run(RunConfig) as `tna run --readout voltage --save-output y.npy` calls it."""
    from tna.deploy import RunConfig, run
    from tna.errors import TnaError
    net, x = foreign(key)
    y = tmp_path / "y.npy"
    cfg = RunConfig(backend="emulator", input=str(x), readout="voltage", save_output=str(y),
                    progress=False)
    try:
        result = run(net, cfg)
    except TnaError as e:
        _check(key, "voltage", ["run"], 2, "", f"error: {e}", unknown_options)
        return
    _check(key, "voltage", ["run"], 0, result.summary(), "", unknown_options)
    assert result.ok and result.readout == "voltage"
    saved = np.load(y)
    assert np.array_equal(saved, result.outputs["emulator"].voltage)
    assert np.array_equal(np.load(tmp_path / "y_predicted.npy"), saved.sum(-1).argmax(1))


@pytest.mark.parametrize("key", _files())
def test_export_to_nir_reads_back(key, foreign, cli, unknown_options, tmp_path):
    import nir
    net, _ = foreign(key)
    out_path = tmp_path / "x.nir"
    argv = ["export", net, "--out", out_path]
    code, out, err = cli(*argv)
    if _check(key, "nir", argv, code, out, err, unknown_options):
        graph = nir.read(out_path)
        assert {"input", "output"} <= set(graph.nodes)


# Lava runs every file netx loads; these have no partner backend to compare with (SDNN: see
# test_lava_alone_gives_no_verdict) or are refused (ntidigits' average layer).
NO_LAVA_PAIR = {"pilotnet_sdnn", "pilotnet_sdnn_square", "loihi2-pilotnet-sdnn", "ntidigits"}


@pytest.mark.lava
@pytest.mark.parametrize("key", [p for p in _files() if _id(p.values[0]) not in NO_LAVA_PAIR])
def test_emulator_equals_lava(key, foreign, cli, unknown_options):
    net, x = foreign(key)
    argv = ["run", net, "--compare", "emulator,lava-sim", "--input", x, "--no-progress"]
    code, out, err = cli(*argv)
    _check(key, "lava", argv, code, out, err, unknown_options)
    assert out.splitlines()[-1] == "PARITY HOLDS (exact)", out
    assert f"emulator vs lava-sim: predictions agree {SAMPLES}/{SAMPLES}" in out, out


@pytest.mark.lava
@pytest.mark.skipif(WHEEL is None, reason="lava-dl's netx test files are not installed")
def test_lava_alone_gives_no_verdict(foreign, cli):
    """An SDNN net only Lava runs: it runs, and no parity verdict is claimed."""
    net, x = foreign("wheel:pilotnet_sdnn_square")
    code, out, err = cli("run", net, "--backend", "lava-sim", "--input", x, "--no-progress")
    assert code == 0, err
    assert "no other backend runs this net" in err and "'SDNN'" in err
    assert out.splitlines()[-1].startswith("NO PARITY VERDICT: only lava-sim ran"), out
    assert "PARITY HOLDS" not in out


# --------------------------------------------------------------------------- regressions
needs_wheel = pytest.mark.skipif(WHEEL is None, reason="lava-dl's netx test files are not "
                                                       "installed")


@needs_wheel
@pytest.mark.parametrize("readout", [None, "voltage"])
def test_tiny_net_on_random_input_parity_holds(readout, foreign, cli, tmp_path):
    """Issue 35, 1: tiny.net's conv readout (36, 1, 1) came out of the reference as (N, 1, 1)
    logits, which broadcast against the emulator's (N,): 'predictions agree 8/4 (200.00%)',
    more differing voltages than the readout holds, and PARITY FAILS."""
    net, _ = foreign("wheel:tiny")
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3, 10)))  # netx's W, H, C
    argv = ["run", net, "--backend", "emulator", "--input", x, "--no-progress"]
    code, out, err = cli(*argv + (["--readout", readout] if readout else []))
    assert code == 0, out + err
    assert "reference vs emulator: predictions agree 4/4 (100.00%)" in out, out
    assert "0 voltage values" in out and out.splitlines()[-1] == "PARITY HOLDS (exact)"


def test_reference_gives_samples_by_outputs_for_a_conv_readout(tmp_path):
    from tna.deploy.backends import BACKENDS, Job
    model = NetxModel(hand_nets()["conv_readout_c11"])
    x = np.random.default_rng(0).integers(0, 2, (3, 2, 5, 5, 4))
    job = Job(net_path="", model=model, inputs=x, readout="voltage", input_message_bits=0,
              progress=False)
    ref, emu = BACKENDS["reference"].run(job), BACKENDS["emulator"].run(job)
    assert ref.logits.shape == emu.logits.shape == (3, 5)
    assert ref.spikes.shape == ref.voltage.shape == emu.voltage.shape == (3, 5, 4)
    assert np.array_equal(ref.voltage, emu.voltage)


def test_a_count_beyond_its_bound_is_a_tna_bug_not_a_verdict():
    from tna.deploy.backends import BackendOutput
    from tna.deploy.parity import check_counts, compare
    from tna.errors import TnaBug
    spikes = np.zeros((4, 36, 5), np.int64)
    good = BackendOutput("emulator", spikes=spikes, voltage=spikes, logits=spikes.sum(-1),
                         seconds=0.0)
    flat = BackendOutput("reference", spikes=spikes, voltage=spikes,
                         logits=spikes.sum(-1)[:, :1, None], seconds=0.0)   # (N, 1, 1)
    with pytest.raises(TnaBug, match=r"^tna bug: .*logits shaped \(4, 1, 1\).*please report"):
        compare(flat, good, None)
    row = compare(good, good, None)
    with pytest.raises(TnaBug, match="8 predictions agreeing of 4"):
        check_counts({**row, "prediction_agreement": 8}, good, good)
    with pytest.raises(TnaBug, match="voltage values differing of 720"):
        check_counts({**row, "voltage_values_differing": 202256}, good, good)


def test_a_failed_check_exits_3_with_one_line_and_no_verdict(foreign, cli, monkeypatch):
    """The report's own checks stop the run in one line (exit 3) instead of PARITY FAILS."""
    from tna.deploy.backends import BACKENDS
    backend = type(BACKENDS["reference"])
    original = backend.run

    def old_shape(self, job):                # the bug of issue 35, 1: (N, C, 1, 1) logits
        out = original(self, job)
        out.logits = out.logits.reshape(len(out.logits), -1, 1, 1)
        return out
    monkeypatch.setattr(backend, "run", old_shape)
    net, x = foreign("hand:conv_readout_c11")
    code, out, err = cli("run", net, "--backend", "emulator", "--input", x, "--no-progress")
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 3 and len(lines) == 1, (code, out, err)
    assert lines[0].startswith("error: tna bug: ") and "please report" in lines[0]
    assert "PARITY" not in out and "Traceback" not in err


def test_save_output_and_raster_follow_the_runs_readout(foreign, cli, tmp_path, monkeypatch):
    """Issue 35, 2: without tna metadata, --readout voltage saved the spikes and drew no
    readout voltage: the writer read the file's metadata, not the run's readout."""
    from tna.deploy import plots
    drawn = {}
    original = plots.raster_png

    def capture(layers, title, path, *args, **kw):
        drawn["last"] = layers[-1][0]
        return original(layers, title, path, *args, **kw)
    monkeypatch.setattr(plots, "raster_png", capture)
    net, x = foreign("hand:bias")                     # a spiking readout, no metadata
    y = tmp_path / "y.npy"
    code, out, err = cli("run", net, "--backend", "emulator", "--input", x, "--readout",
                         "voltage", "--save-output", y, "--plot", tmp_path / "png",
                         "--no-progress")
    assert code == 0, err
    saved = np.load(y)
    assert saved.min() < 0                      # a voltage: spikes are never negative
    assert drawn["last"].endswith("readout voltage")


@pytest.mark.parametrize("name", ["dense_readout_no_neuron", "readout_never_spikes"])
def test_an_output_that_cannot_spike_is_read_by_its_voltage(name, foreign, cli, tmp_path):
    """Issue 35, 6: its spike count predicted class 0 for every sample, silently, and validate
    said 'valid'. Now run reads its voltage and says so; validate notes it."""
    import json
    net, x = foreign(f"hand:{name}")
    code, out, err = cli("validate", net)
    assert code == 0 and "the output layer" in out and "0 for every sample" in out, out
    report = tmp_path / "r.json"
    code, out, err = cli("run", net, "--backend", "emulator", "--input", x, "--report", report,
                         "--no-progress")
    assert code == 0, err
    notes = [line for line in err.splitlines() if line.startswith("note: layer/2")]
    assert len(notes) == 1 and "--readout voltage" in notes[0], err
    assert json.loads(report.read_text())["readout"] == "voltage"
    code, out, err = cli("run", net, "--backend", "emulator", "--input", x, "--readout", "spike",
                         "--no-progress")
    assert code == 0 and "with --readout spike every prediction is class 0" in err, err


def test_a_net_that_can_spike_keeps_the_spike_readout(foreign, cli, tmp_path):
    import json
    net, x = foreign("hand:bias")
    code, out, err = cli("validate", net)
    assert "the output layer" not in out
    report = tmp_path / "r.json"
    code, out, err = cli("run", net, "--backend", "emulator", "--input", x, "--report", report,
                         "--no-progress")
    assert code == 0 and "note: layer/" not in err
    assert json.loads(report.read_text())["readout"] == "spike"


def test_one_backend_alone_gives_no_verdict(foreign, cli, tmp_path):
    import json
    net, x = foreign("hand:bias")
    report = tmp_path / "r.json"
    code, out, err = cli("run", net, "--backend", "reference", "--input", x, "--report", report,
                         "--no-progress")
    assert code == 0, err
    assert out.splitlines()[-1].startswith("NO PARITY VERDICT: only reference ran")
    assert json.loads(report.read_text())["parity_holds"] is None


@needs_wheel
def test_pilotnet_lif_exports_to_nir_and_reads_back(foreign, cli, tmp_path):
    """Issue 35, 4: its dense layers (shape (n, 1, 1)) and their neurons got different shapes
    ('do not chain as a NIR graph'); its input neuron was dropped."""
    import nir
    net, _ = foreign("wheel:pilotnet_lif")
    for form in ("portable", "native"):
        path = tmp_path / f"{form}.nir"
        code, out, err = cli("export", net, "--out", path, "--nir-form", form)
        assert code == 0, err
        graph = nir.read(path)
        kinds = [type(graph.nodes[n]).__name__ for n in graph.nodes]
        # the input neuron as an identity 1x1 conv into its CubaLIF; 5 convs, flatten, 4 dense
        assert kinds.count("Conv2d") == 6 and kinds.count("Affine") == 4, kinds
        assert graph.nodes["layer0_conv"].weight.shape == (3, 3, 1, 1)
        assert graph.nodes["layer7_cuba"].v_threshold.shape == (100,)
        readout = type(graph.nodes["layer10_cuba"]).__name__
        assert readout == ("CubaLI" if form == "native" else "CubaLIF")   # it never spikes


def test_nir_export_of_a_dense_layer_without_neuron(foreign, cli, tmp_path):
    """Issue 35, 4: `layer.neuron` None crashed _neuron with an AttributeError."""
    import nir
    net, _ = foreign("hand:dense_readout_no_neuron")
    code, out, err = cli("export", net, "--out", tmp_path / "x.nir")
    assert code == 0, err
    graph = nir.read(tmp_path / "x.nir")
    assert type(graph.nodes["layer2_cuba"]).__name__ == "CubaLIF"


@needs_wheel
def test_nir_export_refuses_sdnn_in_one_line(foreign, cli, tmp_path):
    """Issue 35, 4: an SDNN net was written as CUBA, silently."""
    net, _ = foreign("wheel:pilotnet_sdnn")
    code, out, err = cli("export", net, "--out", tmp_path / "x.nir")
    assert code == 2 and err.startswith("error: layer/0: 'SDNN' neurons have no NIR form")
    assert len(err.splitlines()) == 1 and not (tmp_path / "x.nir").exists()


@needs_wheel
def test_messages_name_only_options_their_command_has(foreign, cli, tmp_path,
                                                      unknown_options):
    """Issue 35, 3: `export tiny.net --out x.nir` asked for --timesteps, which export lacks;
    `inspect --measure` asked for --input, which inspect lacked."""
    net, x = foreign("wheel:tiny")
    code, out, err = cli("export", net, "--out", tmp_path / "x.nir")
    assert code == 0, err                            # a foreign net needs no T to be a graph
    argv = ["inspect", net, "--measure"]
    code, out, err = cli(*argv)
    assert code == 2 and "--input" in err and not unknown_options(argv, err), err
    code, out, err = cli("inspect", net, "--measure", "--input", x, "--input-layout", "whc")
    assert code == 0 and f"({SAMPLES} samples of {x})" in out, err


def test_the_option_check_itself(unknown_options):
    assert unknown_options(["export", "a.net"], "pass --timesteps") == [
        "--timesteps (for tna export) in: pass --timesteps"]
    assert unknown_options(["inspect"], "pass --dataset or --input x.npy") == []
    assert unknown_options(["export"], "train again with a lower --lr") == []
    assert unknown_options(["run"], "see `tna train --epochs`, then --limit") == []
    assert len(unknown_options(["run"], "see `tna validate --limit`")) == 1
