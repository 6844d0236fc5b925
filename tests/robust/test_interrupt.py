"""Ctrl-C during `tna run --backend lava-sim` stops Lava's processes and leaves no orphan.

A real `tna run` subprocess in its own session; once Lava has forked its process models, SIGINT
goes either to the whole process group (what a terminal's Ctrl-C does) or to the tna process
alone (`kill -INT PID`). Every process ever seen below tna (walking /proc ppid links while it
runs) and every process of its group or session must be gone after tna exits, which must happen
with code 130 and a last stderr line 'interrupted', without a traceback.

The run is 3,000 random samples (`--input`) rather than `--limit 200` of the test set: Lava's
asynchronous run does 200 samples in about a second, too short a window to hit reliably.
SIGINT goes 0-1.5 s (random) after Lava's process count has settled, or (last test) while Lava
is still forking its processes.
"""
import os
import random
import signal
import subprocess
import time

import numpy as np
import pytest

pytestmark = pytest.mark.lava


def _proc_table() -> dict:
    """pid -> (state, ppid, pgrp, session) from /proc/*/stat."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:          # exited while we looked
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        table[int(entry)] = (fields[0], int(fields[1]), int(fields[2]), int(fields[3]))
    return table


def _descendants(root: int, table: dict) -> set:
    children: dict = {}
    for pid, (_, ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pids, table) -> dict:
    """The processes of `pids` still present and not zombies."""
    return {p: table[p] for p in pids if p in table and table[p][0] != "Z"}


def _start(tmp_path, net, tna_exec):
    """`tna run` of 3,000 random digit-like samples on lava-sim (~15 s of Lava on 2 cores)."""
    inputs = tmp_path / "inputs.npy"
    np.save(inputs, np.random.default_rng(0).integers(0, 16, (3000, 64, 5)))
    tna_cmd, env = tna_exec
    log = tmp_path / "stderr.txt"
    proc = subprocess.Popen(tna_cmd("run", net, "--input", inputs, "--compare", "emulator,lava-sim",
                                    "--no-progress"),
                            cwd=tmp_path, env=env(), stdout=subprocess.PIPE,
                            stderr=open(log, "w"), start_new_session=True)
    return proc, log


def _wait_for_lava(proc, log, settled: bool, seen: set) -> None:
    """Return while Lava forks its processes (3 seen), or once all are there (`settled`)."""
    deadline = time.monotonic() + 180
    count, since = 0, time.monotonic()
    while time.monotonic() < deadline and proc.poll() is None:
        kids = _descendants(proc.pid, _proc_table()) if "on lava-sim" in log.read_text() else set()
        seen |= kids
        if len(kids) >= 3 and not settled:      # the first may come before create_runtime
            return
        if len(kids) != count:
            count, since = len(kids), time.monotonic()
        elif count >= 3 and time.monotonic() - since > 0.5:
            return
        time.sleep(0.01)
    raise AssertionError(f"Lava never started (exit {proc.poll()}): {log.read_text()[-1000:]}")


def _interrupt(proc, log, target, settled, delay=0.0):
    """SIGINT once Lava runs; returns (exit code, stderr, stdout, every process seen under tna)."""
    seen: set = set()
    try:
        _wait_for_lava(proc, log, settled, seen)
        time.sleep(delay)
        seen |= _descendants(proc.pid, _proc_table())
        os.killpg(proc.pid, signal.SIGINT) if target == "process group" else \
            os.kill(proc.pid, signal.SIGINT)
        sent = time.monotonic()
        code = proc.wait(timeout=90)
        print(f"{target}: {len(seen)} processes under tna, exit {code} "
              f"{time.monotonic() - sent:.2f} s after SIGINT")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return code, log.read_text(), proc.stdout.read(), seen


def _assert_no_orphans(proc, seen):
    time.sleep(0.5)          # let the kernel reap re-parented children
    table = _proc_table()
    left = _alive(seen, table)
    same_group = {p: v for p, v in table.items() if (v[2] == proc.pid or v[3] == proc.pid)
                  and v[0] != "Z"}
    for pid in set(left) | set(same_group):    # do not leak them into later tests
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not left and not same_group, (
        f"left running after Ctrl-C: {left or same_group} (of {len(seen)} Lava processes)")


@pytest.mark.parametrize("target", ["process group", "tna process only"])
def test_ctrl_c_during_lava_run_leaves_no_orphans(target, tmp_path, digits_run, tna_exec):
    proc, log = _start(tmp_path, digits_run[1], tna_exec)
    delay = random.uniform(0.0, 1.5)
    code, err, out, seen = _interrupt(proc, log, target, settled=True, delay=delay)
    _assert_no_orphans(proc, seen)
    assert len(seen) >= 3, "Lava's processes were not seen"
    assert code == 130, (code, err[-2000:])
    assert "Traceback" not in err, err[-3000:]
    assert err.splitlines()[-1] == "interrupted", err[-2000:]
    assert b"PARITY" not in out                  # no result printed for an interrupted run


def test_ctrl_c_while_lava_starts_is_not_lost(tmp_path, digits_run, tna_exec):
    """SIGINT while net.create_runtime forks Lava's processes (3 of ~11 there).

    Lava's children must ignore that Ctrl-C, but the parent must not lose it: with a plain
    SIG_IGN during the fork it was dropped and the run went on to the end with exit code 0.
    """
    proc, log = _start(tmp_path, digits_run[1], tna_exec)
    code, err, out, seen = _interrupt(proc, log, "process group", settled=False)
    _assert_no_orphans(proc, seen)
    assert b"PARITY" not in out, "the interrupted run went on to the end"
    assert code == 130, (code, err[-2000:])
    assert err.splitlines()[-1] == "interrupted", err[-2000:]
