"""Shared fixtures for the robustness tests: tiny valid nets, a trained digits run, the CLI."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tna import netx
from tna.neurons import Cuba

REPO = Path(__file__).resolve().parents[2]
# The quick digits run the crash tests repeat (about 10 s on 2 cores, most of it imports).
QUICK_TRAIN = ["--dataset", "digits", "--arch", "mlp", "--epochs", "4", "--ternary-after", "2",
               "--limit", "300", "--no-augment", "--no-progress", "--threads", "1"]


def tiny_model(n_in=4, hidden=3, n_out=2, dataset="digits", timesteps=5) -> netx.NetxModel:
    """input(n_in) -> dense(hidden) -> dense(n_out, non-spiking readout), with tna metadata."""
    rng = np.random.default_rng(0)
    hid = Cuba(i_decay=1024, v_decay=123, vth_mant=32)
    out = Cuba(i_decay=1024, v_decay=123, vth_mant=netx.NON_SPIKING_VTH_MANT)
    layers = [
        netx.Layer("input", (n_in,)),
        netx.Layer("dense", (hidden,), weight=2 * rng.integers(-8, 9, (hidden, n_in)),
                   neuron=hid, in_features=n_in, out_features=hidden),
        netx.Layer("dense", (n_out,), weight=2 * rng.integers(-8, 9, (n_out, hidden)),
                   neuron=out, in_features=hidden, out_features=n_out),
    ]
    meta = netx.Metadata(dataset=dataset, class_names=[str(i) for i in range(n_out)],
                         timesteps=timesteps, input_shape=[n_in], input_message_bits=8)
    return netx.NetxModel(layers=layers, meta=meta)


@pytest.fixture(name="tiny_model")
def tiny_model_fixture():
    """The `tiny_model` builder."""
    return tiny_model


@pytest.fixture(scope="session")
def digits_train_args():
    """`tna train` flags of the quick digits run (without --out)."""
    return list(QUICK_TRAIN)


@pytest.fixture
def make_net(tmp_path):
    """Write a tiny valid net (keyword arguments as `tiny_model`); returns its path."""
    def make(name="tiny.net", **kw):
        return netx.write_net(tiny_model(**kw), tmp_path / name)
    return make


@pytest.fixture
def cli(capsys):
    """Run `tna.cli.main(argv)` in-process; returns (exit code, stdout, stderr)."""
    from tna.cli import main

    def run(*argv):
        capsys.readouterr()
        try:
            main([str(a) for a in argv])
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err
    return run


def tna_cmd(*args) -> list:
    """argv of a real `tna` subprocess (the console script of this venv)."""
    exe = Path(sys.executable).with_name("tna")
    head = [str(exe)] if exe.exists() else [sys.executable, "-m", "tna.cli"]
    return head + [str(a) for a in args]


def subprocess_env() -> dict:
    """Environment for tna subprocesses: unbuffered, quiet, this repository first on the path."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONWARNINGS="ignore")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture(scope="session")
def tna_exec():
    """`tna_cmd` and `subprocess_env` for tests that start real tna processes."""
    return tna_cmd, subprocess_env


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """(run folder, exported model.net) of one finished 4-epoch digits MLP run.

    Trained once per session in a real subprocess with --threads 1, so that the crash tests can
    compare their resumed runs with it bit for bit.
    """
    root = tmp_path_factory.mktemp("digits")
    run_dir, net = root / "run", root / "model.net"
    for argv in (["train", *QUICK_TRAIN, "--out", run_dir],
                 ["export", run_dir, "--out", net, "--no-verify", "--no-progress"]):
        done = subprocess.run(tna_cmd(*argv), cwd=root, env=subprocess_env(),
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    return run_dir, net


_OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def unknown_options(argv, text: str) -> list:
    """The --options that `text` (what `tna *argv` printed) names but whose command lacks
    them. An option belongs to the command named last before it in the same line
    (`tna train --lr`, "train again with a lower --lr"), else to the command that printed it;
    options the user typed (in argv) may be quoted back ("no such option: --epoch")."""
    from tna.cli import cli
    # "tna COMMAND" (or "train again") in a message: the options after it are that command's
    names = "|".join(sorted(cli.commands))
    mention = re.compile(rf"\btna ({names})\b|\b(train) again\b")
    words = [str(a) for a in argv if str(a) != "--debug"]
    printed_by = words[0] if words else None
    group = {o for p in cli.params for o in p.opts + p.secondary_opts} | {"--help", "--version"}

    def options(name):
        command = cli.commands.get(name)
        return set() if command is None else \
            {o for p in command.params for o in p.opts + p.secondary_opts} | {"--help"}
    bad = []
    for line in text.splitlines():
        for m in _OPTION.finditer(line):
            before = list(mention.finditer(line, 0, m.start()))
            name = (before[-1][1] or before[-1][2]) if before else printed_by
            if m[0] not in options(name) | group | set(words):
                bad.append(f"{m[0]} (for tna {name}) in: {line}")
    return bad


@pytest.fixture(name="unknown_options")
def unknown_options_fixture():
    """The `unknown_options` check: options a message names that its command lacks."""
    return unknown_options
