"""The end-of-run check of tests/conftest.py finds the processes a test run leaves behind
(issue 34): children, orphans forked from pytest and orphaned programs; a leftover fails the run."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from multiprocessing import resource_tracker
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

REPO = Path(__file__).resolve().parents[1]


def _end(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_a_sleeping_child_is_found_until_it_ends(run_processes):
    child = subprocess.Popen(["sleep", "60"])
    try:
        assert child.pid in run_processes()
    finally:
        child.kill()
        child.wait()
    assert child.pid not in run_processes()


def test_an_orphan_forked_from_pytest_is_found(run_processes):
    """A fork's fork whose parent ended with os._exit, as Lava's shared-memory server was:
    its parent is init now, but it holds pytest's marker pipe."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                                 # the child: fork, report, end at once
        try:
            grandchild = os.fork()
            if grandchild == 0:
                time.sleep(60)
            else:
                os.write(write, str(grandchild).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    orphan = int(os.read(read, 32))
    os.close(read)
    try:
        stat = Path(f"/proc/{orphan}/stat").read_text()
        assert int(stat[stat.rindex(")") + 2:].split()[1]) != os.getpid()   # not below pytest
        assert orphan in run_processes()
    finally:
        _end(orphan)


def test_an_orphaned_program_is_found_by_its_environment(run_processes):
    shell = subprocess.run(["sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!"], capture_output=True,
                           text=True, check=True)
    orphan = int(shell.stdout)
    try:
        assert orphan in run_processes()
    finally:
        _end(orphan)


def test_the_resource_tracker_is_left_out(run_processes):
    resource_tracker.ensure_running()          # lives as long as pytest, whatever the tests do
    assert resource_tracker._resource_tracker._pid not in run_processes()


INNER = textwrap.dedent("""
    import subprocess

    def test_leaves_a_process_that_ends_soon():
        subprocess.Popen(["sleep", "1"])

    def test_leaves_a_process_that_stays():
        proc = subprocess.Popen(["sleep", "60"])
        with open({pid_file!r}, "w") as f:
            f.write(str(proc.pid))
""")


def test_a_leftover_fails_the_run_in_one_line_and_is_killed(tmp_path):
    """An inner pytest run with this conftest: a process that ends within the grace period is
    fine, one that stays fails the run (both tests pass) and is killed."""
    pid_file = tmp_path / "pid.txt"
    (tmp_path / "conftest.py").write_text((REPO / "tests" / "conftest.py").read_text())
    (tmp_path / "test_inner.py").write_text(INNER.format(pid_file=str(pid_file)))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    stayed = int(pid_file.read_text())
    try:
        assert done.returncode == 1, done.stdout + done.stderr
        lines = done.stdout.splitlines()
        assert lines[-1] == (f"error: 1 process of the test run still alive 5 s after the last "
                             f"test (now killed): pid {stayed}: sleep 60"), done.stdout
        assert "2 passed" in lines[-2] and not any(line.startswith("error") for line in lines[:-1])
        deadline = time.monotonic() + 5
        while Path(f"/proc/{stayed}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)                      # killed; init reaps it
        assert not Path(f"/proc/{stayed}").exists()
    finally:
        _end(stayed)
