"""kill -9 during `tna train` / `tna export` (real subprocesses) never leaves a partial file, and
`--resume` after a kill reaches the same weights as an uninterrupted run.

At every moment each target path (checkpoint.pt, best.pt, metrics.jsonl, model.net, ...) is
absent, the previous complete file, or the new complete file. A process killed mid-write leaves
its temporary `.NAME.PID.RANDOM.tmp` behind (nothing can delete it at kill -9); no reader opens
such names, and the next write of NAME (or the next `tna train` in that folder) removes it.

Kill points: the moment a temporary file of a target appears (i.e. inside the write window;
the test reports whether the kill landed before the rename), and pseudo-random delays seeded by
TNA_KILL_SEED (default 0, so a default run is repeatable; TNA_KILL_SEED=random draws a new seed,
printed on failure).
"""
import json
import os
import random
import re
import signal
import subprocess
import time

import pytest
import torch
import yaml

from tna import checkpoint as ckpt
from tna import netx
from tna.atomic import remove_stale_temps

TEMP = re.compile(r"\.(.+)\.(\d+)\.[0-9a-f]{8}\.tmp")
_SEED = os.environ.get("TNA_KILL_SEED", "0")
SEED = random.randrange(1 << 30) if _SEED == "random" else int(_SEED)
PNG_START, PNG_END = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"


def _temps(folder, names=None) -> list:
    """Temporary files in `folder` (of the target `names` only, when given)."""
    found = []
    for entry in os.listdir(folder) if folder.exists() else []:
        m = TEMP.fullmatch(entry)
        if m and (names is None or m[1] in names):
            found.append(entry)
    return found


def _start(cmd, cwd, env, log):
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=open(log, "w"), start_new_session=True)


def _kill_when(proc, fire, timeout=240.0) -> bool:
    """SIGKILL the process group once `fire()` is true; False if it finished first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if fire():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.0005)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError("the kill trigger never fired")


def _temp_appears(folder, name):
    return lambda: bool(_temps(folder, {name}))


def _after(fire, delay):
    """Fires `delay` seconds after `fire()` first became true."""
    state = {}

    def check():
        if "t" not in state and fire():
            state["t"] = time.monotonic()
        return "t" in state and time.monotonic() - state["t"] >= delay
    return check


def _state_dicts(path) -> dict:
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k: state[k] for k in ("model", "twin", "optimizer", "epoch", "best_val")}


def _assert_equal_states(a, b, where):
    flat_a, flat_b = _flatten(a), _flatten(b)
    assert flat_a.keys() == flat_b.keys(), where
    for key, va in flat_a.items():
        vb = flat_b[key]
        if torch.is_tensor(va):
            assert torch.equal(va, vb), f"{where}: {key} differs"
        else:
            assert va == vb, f"{where}: {key}: {va!r} != {vb!r}"


def _flatten(x, prefix=""):
    if isinstance(x, dict):
        out = {}
        for k, v in x.items():
            out.update(_flatten(v, f"{prefix}/{k}"))
        return out
    if isinstance(x, (list, tuple)):
        out = {}
        for i, v in enumerate(x):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: x}


def check_run_folder(out) -> int:
    """Every file in a run folder is complete; returns the epoch of checkpoint.pt (0: none)."""
    epoch = 0
    if (out / "checkpoint.pt").exists():
        epoch = int(ckpt.load(out / "checkpoint.pt")["epoch"])   # weights_only + format check
        assert epoch >= 1
    if (out / "best.pt").exists():
        best = ckpt.load(out / "best.pt")
        # best.pt is written just before checkpoint.pt: at most one epoch ahead of it.
        assert 1 <= best["epoch"] <= epoch + 1, (best["epoch"], epoch)
    if (out / "metrics.jsonl").exists():
        text = (out / "metrics.jsonl").read_text()
        assert text.endswith("\n")
        rows = [json.loads(line) for line in text.splitlines()]
        assert [r["epoch"] for r in rows] == list(range(1, len(rows) + 1))
        # metrics.jsonl is written right after checkpoint.pt: at most one epoch behind.
        assert epoch - 1 <= len(rows) <= epoch, (len(rows), epoch)
    if (out / "config.yaml").exists():
        assert isinstance(yaml.safe_load((out / "config.yaml").read_text()), dict)
    if (out / "result.json").exists():
        assert "test_acc" in json.loads((out / "result.json").read_text())
    if (out / "curves.png").exists():
        png = (out / "curves.png").read_bytes()
        assert png.startswith(PNG_START) and png.endswith(PNG_END)
    return epoch


@pytest.fixture
def train_cmd(tna_exec, digits_train_args):
    tna_cmd, env = tna_exec

    def cmd(out, resume):
        return tna_cmd("train", *digits_train_args, "--out", out,
                       *(["--resume"] if resume else []))
    return cmd, env()


def test_kill9_during_train_leaves_only_complete_files(tmp_path, digits_run, train_cmd):
    """A chain of kills at different points of one run, resumed each time, then completed."""
    cmd, env = train_cmd
    rng = random.Random(SEED)
    out = tmp_path / "run"
    targets = {"checkpoint.pt", "best.pt", "metrics.jsonl"}
    triggers = [
        ("first checkpoint.pt write", _temp_appears(out, "checkpoint.pt")),
        ("best.pt write", _temp_appears(out, "best.pt")),
        ("random delay into training", _after(_temp_appears(out, "metrics.jsonl"),
                                              rng.uniform(0.0, 1.5))),
    ]
    report = []
    for what, fire in triggers:
        resume = (out / "checkpoint.pt").exists()
        before = check_run_folder(out) if out.exists() else 0
        proc = _start(cmd(out, resume), tmp_path, env, tmp_path / "log.txt")
        killed = _kill_when(proc, fire)
        after = check_run_folder(out)
        left = _temps(out, targets)
        report.append((what, killed, before, after, left))
        assert after >= before, f"seed {SEED}: a kill lost a finished epoch: {report}"
    # The last, uninterrupted resume cleans up and ends where the uninterrupted run ended
    # (unless the last kill came too late: a finished run is not resumed, it says so).
    if not (out / "result.json").exists():
        done = subprocess.run(cmd(out, (out / "checkpoint.pt").exists()), cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    assert check_run_folder(out) == 4
    assert _temps(out) == [], f"stale temporaries after a complete run: {_temps(out)}"
    ref_dir, _ = digits_run
    for name in ("checkpoint.pt", "best.pt"):
        _assert_equal_states(_state_dicts(out / name), _state_dicts(ref_dir / name),
                             f"seed {SEED}, {name} after kills {report}")
    assert (out / "metrics.jsonl").read_text().count("\n") == 4
    # A kill that left a temporary behind landed inside that write (before the rename).
    print(f"seed {SEED}: (trigger, killed, epoch before, epoch after, temps left) {report}")


def test_resume_after_kill9_equals_uninterrupted(tmp_path, digits_run, train_cmd):
    """Kill during epoch 2 or 3 of 4 at a random moment, resume, compare every tensor."""
    cmd, env = train_cmd
    out = tmp_path / "run"

    def epochs_done():
        try:
            return (out / "metrics.jsonl").read_text().count("\n")
        except FileNotFoundError:
            return 0
    delay = random.Random(SEED + 1).uniform(0.0, 0.6)     # epochs take ~0.5-1.5 s here
    in_epoch_2 = _after(lambda: epochs_done() >= 1, delay)
    proc = _start(cmd(out, False), tmp_path, env, tmp_path / "log.txt")
    assert _kill_when(proc, lambda: in_epoch_2() or epochs_done() >= 2), "finished before kill"
    epoch = check_run_folder(out)
    assert epoch in (1, 2), f"seed {SEED}: killed after epoch {epoch}, not during 2 or 3"
    done = subprocess.run(cmd(out, True), cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resuming {out} after epoch {epoch}" in done.stderr
    ref_dir, _ = digits_run
    _assert_equal_states(_state_dicts(out / "checkpoint.pt"),
                         _state_dicts(ref_dir / "checkpoint.pt"), f"seed {SEED}")
    ref_rows = [json.loads(x) for x in (ref_dir / "metrics.jsonl").read_text().splitlines()]
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["val_acc"] for r in rows] == [r["val_acc"] for r in ref_rows]
    assert json.loads((out / "result.json").read_text())["test_acc"] == \
        json.loads((ref_dir / "result.json").read_text())["test_acc"]


@pytest.mark.parametrize("when", ["random delay", "model.net write", "netx verification"])
def test_kill9_during_export_keeps_previous_or_new_file(when, tmp_path, digits_run, tna_exec,
                                                      tiny_model):
    run_dir, ref_net = digits_run
    net = netx.write_net(tiny_model(n_in=64), tmp_path / "model.net")   # the previous file
    previous = net.read_bytes()
    tna_cmd, env = tna_exec
    cmd = tna_cmd("export", run_dir, "--out", net, "--limit", "100", "--no-progress")
    rnd = random.Random(SEED + 2)
    if when == "model.net write":
        fire = _temp_appears(tmp_path, "model.net")
    elif when == "netx verification":      # the new file is in place; netx is loading it
        fire = _after(lambda: net.read_bytes() != previous, rnd.uniform(0.0, 0.5))
    else:   # start-up, data, reference evaluation (the whole export takes ~5-8 s here)
        fire = _after(lambda: True, rnd.uniform(0.5, 4.0))
    proc = _start(cmd, tmp_path, env(), tmp_path / "log.txt")
    killed = _kill_when(proc, fire)
    model = netx.read_net(net)                     # complete: reads and validates
    assert netx.validate(model) == []
    layers = len(model.layers)
    if net.read_bytes() == previous:
        outcome = "previous"
    else:
        outcome = "new"
        assert layers == len(netx.read_net(ref_net).layers) == 4
    left = _temps(tmp_path, {"model.net"})
    print(f"seed {SEED}: {when}: killed {killed}, model.net is the {outcome} file, "
          f"temporaries left {left}")
    if left:
        assert outcome == "previous", "a temporary remained although the rename happened"
    # The next write of model.net removes the dead writer's temporary.
    netx.write_net(tiny_model(n_in=64), net)
    assert _temps(tmp_path, {"model.net"}) == []


def test_stale_temp_cleanup_only_touches_dead_writers(tmp_path):
    """remove_stale_temps deletes `.NAME.PID.HEX8.tmp` of exited PIDs only."""
    dead = _exited_pid()
    keep = [f".model.net.{os.getpid()}.0123abcd.tmp",      # this (live) process
            f".model.net.{os.getppid()}.0123abcd.tmp",     # a live parent
            f"model.net.{dead}.0123abcd.tmp",              # no leading dot
            f".model.net.{dead}.0123abcd.tmp.bak",         # other suffix
            f".model.net.{dead}.xyz.tmp",                  # not our random part
            f".other.net.{dead}.0123abcd.tmp",             # another file's (when name given)
            "model.net"]
    gone = [f".model.net.{dead}.0123abcd.tmp", f".model.net.{dead}.ffffffff.tmp"]
    for name in keep + gone:
        (tmp_path / name).write_text("x")
    removed = remove_stale_temps(tmp_path, "model.net")
    assert sorted(p.name for p in removed) == sorted(gone)
    assert sorted(os.listdir(tmp_path)) == sorted(keep)
    assert [p.name for p in remove_stale_temps(tmp_path)] == [f".other.net.{dead}.0123abcd.tmp"]


def _exited_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_atomic_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = netx.write_net(netx.NetxModel(layers=[netx.Layer("input", (2,))]),
                              tmp_path / "a.net")
    finally:
        os.umask(old)
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
