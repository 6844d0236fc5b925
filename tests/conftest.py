"""Whole-run check: no process that the tests start outlives the test run (issue 34).

A forked child that ends with os._exit hands its own children to init: Lava's shared-memory
server of a failed run did, and lived on for an hour after the run with parent 1, out of reach
of a walk down from pytest. So the run marks its processes two ways when it starts: forks keep
pytest's open descriptors, among them a pipe opened here for nothing else, and programs started
from the tests inherit TNA_TEST_RUN in their environment. Any process below pytest or with
either mark that is still alive GRACE_SECONDS after the last test fails the run, named in one
line, and is killed.

multiprocessing's resource tracker is left out: it exits once the last process holding its pipe
has, so it outlives the run only beside a process named here.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tna.console import count

GRACE_SECONDS = 5.0          # time the run's processes get to exit after the last test
MARK_VAR = "TNA_TEST_RUN"    # environment variable that marks programs the tests start
_MARK = pytest.StashKey[tuple]()     # (read end of the marker pipe, value of MARK_VAR)


def pytest_sessionstart(session):
    if not Path("/proc/self/fd").is_dir():      # no /proc (not Linux): nothing to check with
        return
    read, write = os.pipe()     # never used but as a mark: forks of pytest hold `read` open
    os.close(write)
    token = f"{os.getpid()}.{os.fstat(read).st_ino}"
    os.environ[MARK_VAR] = token
    session.config.stash[_MARK] = (read, token)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_sessionfinish(session):
    yield                       # the last line of the report is this check's, if it fails
    mark = session.config.stash.get(_MARK, None)
    if mark is None:
        return
    deadline = time.monotonic() + GRACE_SECONDS
    while (left := _run_processes(mark)) and time.monotonic() < deadline:
        time.sleep(0.1)
    os.close(mark[0])
    if not left:
        return
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    line = (f"error: {count(len(left), 'process', 'processes')} of the test run still alive "
            f"{GRACE_SECONDS:g} s after the last test (now killed): "
            + "; ".join(f"pid {pid}: {cmd}" for pid, cmd in sorted(left.items())))
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        print(line, file=sys.stderr)
    else:
        reporter.write_line(line, red=True, bold=True)
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def run_processes(request):
    """`run_processes()`: {pid: command line} of the live processes of this test run (pytest
    itself and resource trackers aside), as the end-of-run check finds them."""
    mark = request.config.stash.get(_MARK, None)
    if mark is None:
        pytest.skip("no /proc to find processes in")
    return lambda: _run_processes(mark)


def _run_processes(mark) -> dict:
    """{pid: command line} of live processes below pytest or carrying `mark`, but pytest
    itself and multiprocessing's resource trackers."""
    read, token = mark
    me = os.getpid()
    pipe = f"pipe:[{os.fstat(read).st_ino}]"
    table = _proc_table()
    children: dict = {}
    for pid, (_, ppid) in table.items():
        children.setdefault(ppid, []).append(pid)
    below, todo = set(), [me]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in below:
                below.add(child)
                todo.append(child)
    found = {}
    for pid, (state, _) in table.items():
        if pid == me or state in ("Z", "X"):          # zombies have exited already
            continue
        if pid in below or _marked(pid, pipe, token):
            cmdline = _cmdline(pid)
            if cmdline is not None and "multiprocessing.resource_tracker" not in cmdline:
                found[pid] = cmdline
    return found


def _proc_table() -> dict:
    """pid -> (state, ppid) of every process, from /proc/PID/stat."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:          # it has just exited
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            table[int(entry)] = (fields[0], int(fields[1]))
    return table


def _marked(pid: int, pipe: str, token: str) -> bool:
    """Whether process `pid` has MARK_VAR=token in its environment or the marker pipe open."""
    try:
        if f"{MARK_VAR}={token}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
            return True
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:                  # exited meanwhile, or not ours to read
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == pipe:
                return True
        except OSError:              # closed meanwhile
            pass
    return False


def _cmdline(pid: int) -> str | None:
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    text = args.replace(b"\0", b" ").decode(errors="replace").strip()
    return text[:100] + ("..." if len(text) > 100 else "")


@pytest.fixture
def digits_net(tmp_path):
    """A random 64-32-10 net on scikit-learn digits with tna metadata (direct input 0..15):
    netx's file of a trained net's shape, for the deploy, shard and SLURM tests."""
    import numpy as np

    from tna import netx
    from tna.neurons import Cuba
    rng = np.random.default_rng(0)
    layers = [netx.Layer("input", (64,)),
              netx.Layer("dense", (32,), weight=(2 * rng.integers(-20, 40, (32, 64))).astype(
                  np.float32), neuron=Cuba(4096, 512, 300)),
              netx.Layer("dense", (10,), weight=(2 * rng.integers(-128, 128, (10, 32))).astype(
                  np.float32), neuron=Cuba(4096, 300, netx.VTH_MANT_MAX))]
    meta = netx.Metadata(dataset="digits", class_names=[f"digit {i}" for i in range(10)],
                         timesteps=5, input_shape=[64], input_message_bits=8)
    return netx.write_net(netx.NetxModel(layers, meta), tmp_path / "d.net")
