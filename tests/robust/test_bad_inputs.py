"""A corpus of malformed inputs, each run through the real CLI (`tna.cli.main`) in-process.

Every entry must end with exit code 2 and exactly one stderr line `error: ...` that names the
file or field at fault and says what to do, without a traceback (`--debug` shows one).

Exit codes (documented in the commands' --help):
  tna run       0 parity holds, 1 parity fails, 2 bad input, including any net that `validate`
                finds a problem in (the run cannot start).
  tna validate  0 valid, 1 the file reads but breaks netx/Loihi rules (each problem listed on
                stdout), 2 the file cannot be read as a netx net at all (not HDF5, truncated,
                required datasets missing, unknown metadata version).
"""
import pickle
import subprocess

import h5py
import numpy as np
import pytest
import torch

from tna.data import write_idx
from tna.errors import TnaError


# --------------------------------------------------------------------------- helpers
def _edit(path, fn):
    """Apply `fn(h5py.File)` to the net at `path` in place; returns the path."""
    with h5py.File(path, "r+") as f:
        fn(f)
    return path


def _replace(f, key, value):
    del f[key]
    f[key] = value


class _Marker:
    """Unpickling this object would create the file `path` (if pickle ran code)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _fmnist_dir(path, corrupt):
    """A tiny Fashion-MNIST style folder with one broken file."""
    path.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 20), ("t10k", 10)):
        write_idx(path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(path / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    bad = path / "train-images-idx3-ubyte.gz"
    raw = bad.read_bytes()
    bad.write_bytes(raw[: len(raw) // 2] if corrupt == "truncated" else
                    raw[:10] + bytes(b ^ 0x5A for b in raw[10:40]) + raw[40:])
    return path


TRAIN = ["train", "--arch", "mlp", "--no-augment", "--no-progress", "--epochs", "2",
         "--ternary-after", "1"]


# --------------------------------------------------------------------------- the corpus
# Each case: (tmp_path, request) -> (argv, [substrings the error line must contain]).
# The substrings name the file or field and the remedy.
def c_truncated_net(tmp, rq):
    net = rq.getfixturevalue("make_net")()
    raw = net.read_bytes()
    net.write_bytes(raw[: len(raw) // 2])
    return ["run", net, "--backend", "emulator"], [str(net), "export it again"]


def c_text_net(tmp, rq):
    net = tmp / "notes.net"
    net.write_text("this is not a network\n")
    return ["run", net], [str(net), "not a netx file (not HDF5 at all)", "tna export"]


def c_empty_net(tmp, rq):
    net = tmp / "empty.net"
    net.touch()
    return ["validate", net], [str(net), "an empty file", "export the net again"]


def c_missing_net(tmp, rq):
    return ["validate", tmp / "nope.net"], [str(tmp / "nope.net"), "no such file"]


def c_no_weight(tmp, rq):
    net = _edit(rq.getfixturevalue("make_net")(), lambda f: f.__delitem__("layer/1/weight"))
    return ["run", net], [str(net), "layer/1", "'weight'", "re-export"]


def c_no_vthmant(tmp, rq):
    net = _edit(rq.getfixturevalue("make_net")(),
                lambda f: f.__delitem__("layer/2/neuron/vThMant"))
    return ["validate", net], [str(net), "layer/2/neuron", "'vThMant'", "re-export"]


def c_no_type(tmp, rq):
    net = _edit(rq.getfixturevalue("make_net")(), lambda f: f.__delitem__("layer/1/type"))
    return ["run", net], [str(net), "layer/1", "'type'", "re-export"]


def c_no_layers(tmp, rq):
    net = tmp / "other.h5"
    with h5py.File(net, "w") as f:
        f["data"] = np.zeros(3)
    return ["run", net], [str(net), "no 'layer' group", "tna export"]


def c_pool_layer(tmp, rq):
    net = _edit(rq.getfixturevalue("make_net")(),
                lambda f: _replace(f, "layer/1/type", np.array([b"pool"], "S10")))
    return ["run", net, "--backend", "emulator"], [str(net), "layer/1 (pool)", "grouped conv"]


def c_average_layer(tmp, rq):
    net = _edit(rq.getfixturevalue("make_net")(),
                lambda f: _replace(f, "layer/2/type", np.array([b"average"], "S10")))
    return ["run", net], [str(net), "layer/2 (average)", "netx cannot load"]


def w_fractional_weight(tmp, rq):
    net = _edit(rq.getfixturevalue("make_net")(),
                lambda f: _replace(f, "layer/1/weight", f["layer/1/weight"][()] + 0.5))
    return ["run", net], [str(net), "layer/1 (dense): weight", "quantise to integers"]


def w_weight_out_of_range(tmp, rq):
    def big(f):
        w = f["layer/2/weight"][()]
        w[0, 0] = 1000
        _replace(f, "layer/2/weight", w)
    net = _edit(rq.getfixturevalue("make_net")(), big)
    return ["run", net], [str(net), "layer/2 (dense): weight outside", "8 bits"]


def w_threshold_17_bits(tmp, rq):
    net = _edit(rq.getfixturevalue("make_net")(),
                lambda f: _replace(f, "layer/1/neuron/vThMant", 2**17))
    return ["run", net], [str(net), "neuron/vThMant = 131072", "re-export with a threshold"]


def w_decay_negative(tmp, rq):
    net = _edit(rq.getfixturevalue("make_net")(),
                lambda f: _replace(f, "layer/1/neuron/iDecay", -1))
    return ["run", net], [str(net), "neuron/iDecay = -1", "[0, 4096]", "fraction"]


def w_decay_too_big(tmp, rq):
    net = _edit(rq.getfixturevalue("make_net")(),
                lambda f: _replace(f, "layer/2/neuron/vDecay", 5000))
    return ["run", net], [str(net), "neuron/vDecay = 5000", "fraction"]


def c_shapes_do_not_chain(tmp, rq):
    def widen(f):      # layer 2 now expects 5 inputs, layer 1 gives 3
        _replace(f, "layer/2/weight", np.full((2, 5), 2, np.float32))
        _replace(f, "layer/2/inFeatures", 5)
    net = _edit(rq.getfixturevalue("make_net")(), widen)
    return ["run", net], [str(net), "layer/2 (dense): weight expects 5 inputs", "re-export"]


def c_input_shape_mismatch(tmp, rq):
    net = rq.getfixturevalue("make_net")()
    bad = tmp / "wrong.npy"
    np.save(bad, np.ones((3, 7, 5), np.int64))     # the net takes 4 inputs, not 7
    return ["run", net, "--backend", "emulator", "--input", bad], \
        [str(bad), "(3, 7, 5)", "does not fit the net's input 4 plus time last"]


def c_input_object_npy(tmp, rq):
    net = rq.getfixturevalue("make_net")()
    bad, marker = tmp / "evil.npy", tmp / "PWNED"
    np.save(bad, np.array([_Marker(marker)], dtype=object), allow_pickle=True)
    rq.node.marker_file = marker
    return ["run", net, "--backend", "emulator", "--input", bad], [str(bad), "numpy.save"]


def c_metadata_version(tmp, rq):
    net = _edit(rq.getfixturevalue("make_net")(),
                lambda f: f["tna"].attrs.__setitem__("format_version", 99))
    return ["run", net], [str(net), "format_version 99", "export the net again"]


def c_input_values_out_of_range(tmp, rq):
    """An array for a net expecting 0..15 (direct encoding, 4 input bits) full of 1000s."""
    net, bad = rq.getfixturevalue("make_net")(), tmp / "big.npy"
    np.save(bad, np.full((2, 4, 5), 1000, np.int64))
    return ["run", net, "--backend", "emulator", "--input", bad], \
        [str(bad), "values 1000..1000", "takes 0..15", "direct encoding (4 input bits)"]


def c_skip_layers_past_the_last(tmp, rq):
    net = rq.getfixturevalue("make_net")()
    return ["run", net, "--backend", "emulator", "--skip-layers", "3"], \
        ["skip_layers = 3", "keep at least one dense or conv layer"]


def c_metadata_unknown_key(tmp, rq):
    def add(f):
        f["tna"].attrs["meta"] = f["tna"].attrs["meta"][:-1] + ', "colour": "red"}'
    net = _edit(rq.getfixturevalue("make_net")(), add)
    return ["validate", net], [str(net), "colour", "export again"]


def c_ckpt_nan(tmp, rq):
    run_dir, _ = rq.getfixturevalue("digits_run")
    state = torch.load(run_dir / "best.pt", weights_only=True)
    name = next(k for k, v in state["model"].items() if v.is_floating_point() and v.numel() > 1)
    state["model"][name].view(-1)[3] = float("nan")
    bad = tmp / "nan.pt"
    torch.save(state, bad)
    return ["export", bad, "--out", tmp / "x.net"], [str(bad), name, "NaN", "lower --lr"]


def c_ckpt_inf(tmp, rq):
    run_dir, _ = rq.getfixturevalue("digits_run")
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    name = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][name].view(-1)[0] = float("-inf")
    bad = tmp / "run"
    bad.mkdir()
    torch.save(state, bad / "best.pt")      # a run folder whose best.pt diverged
    return ["export", bad, "--out", tmp / "x.net"], [str(bad / "best.pt"), name, "train again"]


def c_ckpt_random_bytes(tmp, rq):
    bad = tmp / "random.pt"
    bad.write_bytes(np.random.default_rng(1).bytes(4096))
    return ["export", bad], [str(bad), "not a tna checkpoint", "tna train"]


def c_ckpt_malicious_pickle(tmp, rq):
    bad, marker = tmp / "evil.pt", tmp / "PWNED"
    bad.write_bytes(pickle.dumps({"format": "tna-checkpoint", "x": _Marker(marker)}))
    rq.node.marker_file = marker      # not the zip torch.save writes: never unpickled
    return ["export", bad], [str(bad), "not a tna checkpoint", "tna train"]


def c_ckpt_malicious_torch_zip(tmp, rq):
    bad, marker = tmp / "evil_zip.pt", tmp / "PWNED"
    torch.save({"format": "tna-checkpoint", "model": _Marker(marker)}, bad)
    rq.node.marker_file = marker
    return ["export", bad], [str(bad), "refused", "tna train"]


def c_run_folder_given_to_run(tmp, rq):
    run = tmp / "runs" / "fm"
    run.mkdir(parents=True)
    (run / "best.pt").write_bytes(b"PK\x03\x04")
    return ["run", run], [str(run), "a run folder, not a netx file", "tna export"]


def c_checkpoint_given_to_inspect(tmp, rq):
    ckpt = tmp / "best.pt"
    ckpt.write_bytes(b"PK\x03\x04 a zip")
    return ["inspect", ckpt], [str(ckpt), "a tna checkpoint, not a netx file", "tna export"]


def c_net_given_to_export(tmp, rq):
    net = rq.getfixturevalue("make_net")()
    net.write_bytes(net.read_bytes()[:3000])           # a damaged .net
    return ["export", net, "--out", tmp / "x.net"], [str(net), "an HDF5 file",
                                                     "not a checkpoint", "tna run"]


def c_export_onto_an_existing_file(tmp, rq):
    net = rq.getfixturevalue("make_net")()
    run = tmp / "r"
    run.mkdir()
    return ["export", net, "--out", net], [str(net), "exists; pass --force"]


def c_resume_with_a_different_flag(tmp, rq):
    run = tmp / "r"
    run.mkdir()
    (run / "config.yaml").write_text("dataset: digits\nlr: 0.003\n")
    return ["train", "--resume", run, "--lr", "0.01"], ["--lr 0.01 differs from the run's",
                                                        "config.yaml"]


def c_flag_typo_suggests_only_close_ones(tmp, rq):
    return ["train", "--epoch", "3"], ["no such option: --epoch (did you mean --epochs?)"]


def c_ckpt_empty_file(tmp, rq):
    bad = tmp / "checkpoint.pt"
    bad.touch()
    return ["export", bad], [str(bad), "an empty file, not a checkpoint", "tna train"]


def c_ckpt_foreign_dict(tmp, rq):
    bad = tmp / "someone_else.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, bad)
    return ["export", bad], [str(bad), "not a tna checkpoint", "tna train"]


def c_ckpt_empty_run_folder(tmp, rq):
    folder = tmp / "run"
    folder.mkdir()
    return ["export", folder], [str(folder), "no best.pt or checkpoint.pt", "run folder"]


def c_data_empty_folder(tmp, rq):
    empty = tmp / "EMPTY"
    empty.mkdir()
    return [*TRAIN, "--dataset", "fashion-mnist", "--data-dir", empty, "--out", tmp / "r"], \
        [str(empty), "is empty", "--data-dir"]


def c_data_missing_folder(tmp, rq):
    gone = tmp / "no-such-folder"
    return [*TRAIN, "--dataset", "mnist", "--data-dir", gone, "--out", tmp / "r"], \
        [str(gone), "does not exist", "--data-dir"]


def c_data_truncated_idx(tmp, rq):
    folder = _fmnist_dir(tmp / "fm", "truncated")
    return [*TRAIN, "--dataset", "fashion-mnist", "--data-dir", folder, "--out", tmp / "r"], \
        [str(folder / "train-images-idx3-ubyte.gz"), "truncated", "--data-dir"]


def c_data_corrupt_gzip(tmp, rq):
    folder = _fmnist_dir(tmp / "fm", "flipped")
    return [*TRAIN, "--dataset", "fashion-mnist", "--data-dir", folder, "--out", tmp / "r"], \
        [str(folder / "train-images-idx3-ubyte.gz"), "corrupt", "--data-dir"]


def c_data_npz_object_array(tmp, rq):
    bad, marker = tmp / "evil.npz", tmp / "PWNED"
    np.savez(bad, x=np.array([_Marker(marker)] * 4, dtype=object), y=np.zeros(4, np.int64))
    rq.node.marker_file = marker
    return [*TRAIN, "--dataset", f"npz:{bad}", "--out", tmp / "r"], \
        [str(bad), "'x'", "without pickle", "plain numeric array"]


def c_config_unknown_key(tmp, rq):
    cfg = tmp / "cfg.yaml"
    cfg.write_text("dataset: digits\nepochz: 3\n")
    return ["train", "--config", cfg], [str(cfg), "unknown key 'epochz'", "did you mean 'epochs'"]


def c_config_wrong_type(tmp, rq):
    cfg = tmp / "cfg.yaml"
    cfg.write_text("lr: fast\n")
    return ["train", "--config", cfg], [str(cfg), "lr = 'fast'", "should be float"]


def c_config_python_tag(tmp, rq):
    cfg, marker = tmp / "cfg.yaml", tmp / "PWNED"
    cfg.write_text(f"epochs: !!python/object/apply:os.system ['touch {marker}']\n")
    rq.node.marker_file = marker
    return ["train", "--config", cfg], [str(cfg), "not valid YAML", "fix the file"]


def c_teacher_malicious_pickle(tmp, rq):
    bad, marker = tmp / "teacher.pt", tmp / "PWNED"
    torch.save({"format": "tna-checkpoint", "model": _Marker(marker)}, bad)
    rq.node.marker_file = marker
    return [*TRAIN, "--dataset", "digits", "--method", "kd", "--teacher", bad,
            "--out", tmp / "r"], [str(bad), "refused to load", "tna train"]


def c_config_not_yaml(tmp, rq):
    cfg = tmp / "cfg.yaml"
    cfg.write_text("epochs: [1, 2\nlr: 0.1\n")
    return ["export", "x", "--config", cfg], [str(cfg), "not valid YAML", "fix the file"]


def c_flag_epochs_zero(tmp, rq):
    return ["train", "--epochs", "0"], ["epochs = 0", "whole number ≥ 1"]


def c_flag_lr_negative(tmp, rq):
    return ["train", "--lr", "-1"], ["lr = -1.0", "must be > 0"]


def c_flag_backend_unknown(tmp, rq):
    return ["run", rq.getfixturevalue("make_net")(), "--backend", "foo"], \
        ["backend = 'foo'", "choose one of", "lava-sim", "emulator"]


def c_flag_weights_unknown(tmp, rq):
    return ["train", "--weights", "quaternary"], ["weights = 'quaternary'", "choose one of fp"]


def c_flag_timesteps_not_int(tmp, rq):
    return ["train", "--timesteps", "abc"], ["'--timesteps'", "'abc' is not a valid integer",
                                             "tna train --help"]


def c_flag_unknown_option(tmp, rq):
    return ["run", "x.net", "--bakend", "emulator"], ["--bakend", "tna run --help"]


CASES = {name[2:]: fn for name, fn in sorted(globals().items()) if name.startswith("c_")}
# Files netx runs but Loihi 2 cannot hold, or runs with changed values: `validate` warns.
WARNED = {name[2:]: fn for name, fn in sorted(globals().items()) if name.startswith("w_")}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gives_one_line_error(case, tmp_path, request, cli, monkeypatch,
                                        unknown_options):
    monkeypatch.chdir(tmp_path)           # any default output lands in tmp_path
    argv, needles = CASES[case](tmp_path, request)
    code, out, err = cli(*argv)
    lines = err.splitlines()
    assert code == 2, (code, out, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err + out
    assert not unknown_options(argv, err), "the message names options its command lacks"
    for needle in needles:
        assert needle in lines[0], f"{needle!r} missing from: {lines[0]}"
    marker = getattr(request.node, "marker_file", None)
    if marker is not None:
        assert not marker.exists(), "unpickling ran code from an untrusted file"


# Readable files that netx cannot load or run: `validate` lists them and exits 1.
INVALID_BUT_READABLE = ["pool_layer", "average_layer", "shapes_do_not_chain"]


@pytest.mark.parametrize("case", INVALID_BUT_READABLE)
def test_validate_lists_problems_with_exit_1(case, tmp_path, request, cli):
    argv, needles = CASES[case](tmp_path, request)
    net = argv[1]
    code, out, err = cli("validate", net)
    lines = out.splitlines()
    assert code == 1, (out, err)
    assert err == ""
    assert lines[-1] == f"{len(lines) - 1} problem(s)"
    assert all(line.startswith(f"{net}: layer/") for line in lines[:-1]), out
    # The same problem `tna run` named first is among those listed.
    assert any(needles[1] in line for line in lines[:-1]), out


@pytest.mark.parametrize("case", sorted(WARNED))
def test_validate_warns_on_what_netx_runs_with_exit_0(case, tmp_path, request, cli,
                                                      unknown_options):
    argv, needles = WARNED[case](tmp_path, request)
    net = argv[1]
    code, out, err = cli("validate", net)
    lines = out.splitlines()
    assert code == 0 and err == "", (out, err)
    assert not unknown_options(["validate"], out)
    assert lines[-1].startswith(f"{net}: valid (") and "1 warning(s)" in lines[-1], out
    assert lines[0].startswith(f"{net}: warning: layer/") and needles[1] in lines[0], out


def test_validate_several_problems_all_listed(make_net, cli):
    def break_twice(f):
        _replace(f, "layer/1/type", np.array([b"pool"], "S10"))
        _replace(f, "layer/2/weight", np.full((2, 5), 2, np.float32))
    net = _edit(make_net(), break_twice)
    code, out, _ = cli("validate", net)
    assert code == 1
    assert "layer/1 (pool)" in out and "weight expects 5 inputs" in out
    assert out.splitlines()[-1] == "2 problem(s)"
    code, _, err = cli("run", net)            # run names the first and points at validate
    assert code == 2 and "(+1 more; run `tna validate`)" in err


def test_valid_tiny_net_passes(make_net, cli):
    net = make_net()
    assert cli("validate", net) == (0, f"{net}: valid (3 layers)\n", "")


def test_debug_shows_traceback(tmp_path, cli, tna_exec):
    net = tmp_path / "notes.net"
    net.write_text("not hdf5")
    with pytest.raises(TnaError, match="not a netx file"):
        cli("--debug", "validate", net)      # in-process: the exception propagates
    tna_cmd, env = tna_exec
    done = subprocess.run(tna_cmd("--debug", "validate", net), capture_output=True, text=True,
                          env=env(), timeout=120)
    assert done.returncode != 0
    assert "Traceback (most recent call last)" in done.stderr
    assert "TnaError" in done.stderr and str(net) in done.stderr
