"""The `tna` command line, in process (click's CliRunner and `tna.cli.main`), plus import cost."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tna import netx
from tna.cli import cli, main
from tna.errors import TnaError
from tna.neurons import Cuba

COMMANDS = ["train", "export", "run", "inspect", "validate", "demo"]
TNA = str(Path(sys.executable).with_name("tna"))


def call(capsys, *argv):
    """Run `tna argv` through main(); return (exit code, stdout, stderr)."""
    code = 0
    try:
        main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_line_error(err):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err


# --------------------------------------------------------------------------- help

def test_top_level_help_lists_commands():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output
    assert "Quickstart" in result.output


@pytest.mark.parametrize("name", COMMANDS)
def test_each_command_help_ends_with_an_example(name):
    # What a user sees: the help output itself ends with the example block, after the options.
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    lines = [ln for ln in result.output.rstrip().splitlines() if ln.strip()]
    block = lines[[i for i, ln in enumerate(lines) if ln.strip().startswith("Example")][-1]:]
    assert len(block) >= 2, result.output
    assert all(ln.strip().startswith(f"tna {name}") for ln in block[1:]), block


def test_train_help_shows_every_config_field_with_its_default():
    from tna.train.config import TrainConfig
    import dataclasses
    out = CliRunner().invoke(cli, ["train", "--help"], terminal_width=200).output
    for f in dataclasses.fields(TrainConfig):
        assert "--" + f.name.replace("_", "-") in out, f.name
    assert "[default: 64]" in out    # batch size


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("argv,names", [
    (["train", "--epochs", "0"], "epochs"),
    (["train", "--method", "bogus"], "method"),
    (["train", "--epochs", "many"], "epochs"),            # click's own type check
    (["train", "--no-such-flag"], "no-such-flag"),
    (["run", "x.net", "--backend", "gpu"], "backend"),
    (["export", "missing-run", "--split", "train"], "split"),
    (["frobnicate"], "frobnicate"),
])
def test_bad_flag_value_is_one_line_exit_2(capsys, argv, names):
    code, out, err = call(capsys, *argv)
    assert code == 2
    assert_one_line_error(err)
    assert names in err


def test_debug_shows_the_traceback(capsys):
    with pytest.raises(TnaError, match="epochs"):
        main(["--debug", "train", "--epochs", "0"])
    proc = subprocess.run([TNA, "--debug", "validate", "no-such.net"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "TnaError" in proc.stderr
    proc = subprocess.run([TNA, "validate", "no-such.net"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert_one_line_error(proc.stderr)


def test_config_file_with_unknown_key(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("dataset: digits\nepochz: 3\n")
    code, _, err = call(capsys, "train", "--config", cfg)
    assert code == 2
    assert_one_line_error(err)
    assert "bad.yaml" in err and "'epochz'" in err
    code, _, err = call(capsys, "train", "--config", tmp_path / "missing.yaml")
    assert code == 2 and "not found" in err


@pytest.mark.parametrize("command", ["run", "export", "import"])
def test_named_training_config_elsewhere_names_the_command(capsys, command):
    code, _, err = call(capsys, command, "x.net", "--config", "fmnist-cpu")
    assert code == 2
    assert_one_line_error(err)
    assert "training recipe" in err and "tna train --config fmnist-cpu" in err
    out = CliRunner().invoke(cli, [command, "--help"], terminal_width=200).output
    assert "fmnist-cpu" not in out and "this command's options" in out


def test_flags_override_the_config_file(tmp_path):
    from tna.cli import build_config
    from tna.train.config import TrainConfig
    cfg = tmp_path / "c.yaml"
    cfg.write_text("dataset: digits\nepochs: 7\nternary-after: 1\nlr: 0.5\n")
    out = build_config(TrainConfig, cfg, {"epochs": 3, "lr": None}, "train")
    assert (out.dataset, out.epochs, out.ternary_after, out.lr) == ("digits", 3, 1, 0.5)


# --------------------------------------------------------------------------- validate

def _write(tmp_path, name, weight):
    layers = [netx.Layer("input", (4,)),
              netx.Layer("dense", (2,), weight=np.asarray(weight, np.float32),
                         neuron=Cuba(i_decay=1024, v_decay=128, vth_mant=80),
                         in_features=4, out_features=2)]
    return netx.write_net(netx.NetxModel(layers), tmp_path / name)


def test_validate_exit_codes(tmp_path):
    runner = CliRunner()
    good = _write(tmp_path, "good.net", [[2, -4, 0, 64], [0, 0, 254, -256]])
    result = runner.invoke(cli, ["validate", str(good)])
    assert result.exit_code == 0 and "valid (2 layers)" in result.output

    # netx runs these (truncating, clipping): warnings, not problems
    odd = _write(tmp_path, "odd.net", [[2.5, -4, 0, 64], [0, 0, 300, -256]])
    result = runner.invoke(cli, ["validate", str(odd)])
    assert result.exit_code == 0 and "2 warning(s)" in result.output
    assert "non-integer" in result.output and "8-bit range" in result.output

    bad = _write(tmp_path, "bad.net", [[0, 0, 0, 0], [0, 0, 0, 0]])
    result = runner.invoke(cli, ["validate", str(bad)])
    assert result.exit_code == 1
    assert "every weight is 0" in result.output and "1 problem(s)" in result.output

    junk = tmp_path / "junk.net"
    junk.write_bytes(b"not hdf5")
    result = runner.invoke(cli, ["validate", str(junk)])
    assert result.exit_code == 2 or isinstance(result.exception, TnaError)


# --------------------------------------------------------------------------- the pipeline

@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """`tna train` then `tna export` through main(), as a user would type them."""
    folder = tmp_path_factory.mktemp("cli")
    out = {}
    for step, argv in (
        ("train", ["train", "--dataset", "digits", "--arch", "16-12-out", "--method", "single",
                   "--epochs", "1", "--ternary-after", "0", "--limit", "64",
                   "--batch-size", "32", "--no-augment", "--no-progress",
                   "--out", folder / "run"]),
        ("export", ["export", folder / "run", "--out", folder / "m.net", "--limit", "30",
                    "--no-progress"]),
    ):
        try:
            main([str(a) for a in argv])
            out[step] = 0
        except SystemExit as e:
            out[step] = e.code
    return folder, out


def test_cli_train_and_export(cli_run):
    folder, codes = cli_run
    assert codes == {"train": 0, "export": 0}
    for name in ("best.pt", "checkpoint.pt", "metrics.jsonl", "result.json", "config.yaml"):
        assert (folder / "run" / name).is_file()
    meta = netx.read_net(folder / "m.net").meta
    assert meta.dataset == "digits" and meta.weights == "ternary"


def test_cli_run_on_the_emulator(cli_run, capsys, tmp_path):
    folder, _ = cli_run
    code, out, _ = call(capsys, "run", folder / "m.net", "--backend", "emulator", "--limit",
                        "25", "--report", tmp_path / "p.json", "--no-progress")
    assert code == 0
    assert "25 samples on reference, emulator" in out and "PARITY HOLDS (exact)" in out
    import json
    assert json.loads((tmp_path / "p.json").read_text())["parity_holds"] is True


def test_cli_inspect(cli_run, capsys):
    folder, _ = cli_run
    code, out, _ = call(capsys, "inspect", folder / "m.net")
    assert code == 0
    lines = out.splitlines()
    assert "bits netx" in lines[0] and "mem tna (bits)" in lines[0]
    ternary_row = next(ln for ln in lines if ln.split()[:2] == ["2", "dense"])
    assert ternary_row.split()[5:7] == ["2", "2"]      # weight bits (netx, tna) of the ternary layer
    assert any("with tna's loader" in ln and "with unmodified netx" in ln for ln in lines)
    assert any(ln.startswith("total: ") for ln in lines)
    assert "tna metadata: digits, T=5" in out
    code, out, _ = call(capsys, "inspect", folder / "m.net", "--measure", "--limit", "10")
    assert code == 0 and "spikes/inf" in out and "per inference (10 samples" in out
    # --data-dir reaches the data loader (it was once ignored)
    code, out, err = call(capsys, "inspect", folder / "m.net", "--dataset", "fashion-mnist",
                          "--data-dir", folder / "no-such-dir")
    assert code == 2 and "no-such-dir" in err and "Prophesee" not in out + err
    assert_one_line_error(err)


def test_cli_validate_exported(cli_run, capsys):
    folder, _ = cli_run
    code, out, _ = call(capsys, "validate", folder / "m.net")
    assert code == 0 and "valid (4 layers)" in out


def test_cli_train_errors_are_one_line(cli_run, capsys):
    folder, _ = cli_run
    code, _, err = call(capsys, "train", "--dataset", "digits", "--out", folder / "run",
                        "--epochs", "1", "--ternary-after", "0", "--no-augment")
    assert code == 2
    assert_one_line_error(err)
    assert "--resume" in err
    code, _, err = call(capsys, "export", folder / "nothing-here")
    assert code == 2 and "no such checkpoint" in err


def test_ctrl_c_in_training_says_interrupted_once(tmp_path, capsys, monkeypatch):
    """The training loop names the resume command, the command line says "interrupted":
    once, as the last line."""
    from tna.train import loop
    real = loop._epoch

    def stop_after_the_first(run, probe, on_epoch):
        real(run, probe, on_epoch)
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "_epoch", stop_after_the_first)
    code, _, err = call(capsys, "train", "--dataset", "digits", "--arch", "16-out", "--weights",
                        "fp", "--epochs", "2", "--limit", "64", "--no-progress",
                        "--out", tmp_path / "r")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 130 and lines[-1] == "interrupted", err
    assert sum("interrupted" in line for line in lines) == 1, err
    assert f"resume with `tna train --resume {tmp_path / 'r'}`" in lines[-2]


def test_counts_of_one_are_singular(cli_run, capsys):
    folder, _ = cli_run
    code, out, err = call(capsys, "run", folder / "m.net", "--backend", "emulator", "--limit",
                          "1", "--no-progress")
    assert code == 0 and "m.net: 1 sample on reference, emulator" in out
    assert "all 1 sample (" in out and "running 1 sample on emulator" in err
    assert not re.search(r"(?<![\d.,])1 samples", out + err)     # "21 samples/s" is a rate
    code, _, err = call(capsys, "export", folder / "run", "--out", folder / "one.net",
                        "--limit", "1", "--no-progress")
    assert code == 0 and "(1 sample) checked by" in err
    assert not re.search(r"(?<![\d.,])1 samples", err)


def test_inspect_leaves_out_a_data_set_name_the_file_lacks(tmp_path, capsys):
    model = netx.read_net(_write(tmp_path, "anon.net", [[2, -4, 0, 64], [0, 0, 254, -256]]))
    model.meta = netx.Metadata(dataset="", timesteps=20, input_shape=[4])
    code, out, _ = call(capsys, "inspect", netx.write_net(model, tmp_path / "meta.net"))
    assert code == 0 and "tna metadata: T=20, " in out, out


# --------------------------------------------------------------------------- import cost

@pytest.mark.parametrize("code", [
    "import tna",
    "import tna.cli",
    "import sys; from tna.cli import main; sys.argv = ['tna', '--help']\n"
    "try:\n    main()\nexcept SystemExit as e:\n    assert e.code in (0, None)",
])
def test_import_and_help_stay_light(code):
    check = ("\nimport sys\nheavy = sorted({m.split('.')[0] for m in sys.modules} & "
             "{'lava', 'torch', 'torchvision', 'h5py', 'matplotlib', 'sklearn'})\n"
             "print('HEAVY', ','.join(heavy))")
    proc = subprocess.run([sys.executable, "-c", code + check], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    heavy = proc.stdout.strip().splitlines()[-1].removeprefix("HEAVY").strip()
    assert heavy == "", f"`{code.splitlines()[0]}` imported {heavy}"
