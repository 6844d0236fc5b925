"""Ctrl-C during run_lava ends every Lava process (a terminal sends SIGINT to the whole group)."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.lava

SCRIPT = textwrap.dedent("""
    import sys
    import h5py
    import numpy as np
    from tna.lava.runner import run_lava

    path = sys.argv[1]
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer/0")
        layer.create_dataset("type", data=np.array([b"dense"], dtype="S10"))
        layer.create_dataset("shape", data=np.array([64]))
        layer.create_dataset("weight", data=np.full((64, 32), 2, dtype=np.float32))
        for key, value in dict(iDecay=1024, vDecay=512, vThMant=40, refDelay=1).items():
            layer.create_dataset("neuron/" + key, data=value)
        layer.create_dataset("neuron/type", data=b"CUBA")
    # ~ 180k Lava steps, about a minute: far longer than the test waits.
    run_lava(path, np.ones((20_000, 32, 8), dtype=np.int64), timesteps=8, progress=True)
    print("finished")
""")


def _session_processes(sid):
    """(pid, state, cmdline) of processes in session sid."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):  # the process has just ended
            continue
        if int(fields[3]) == sid:
            found.append((int(entry.name), fields[0], cmdline))
    return found


def test_sigint_stops_all_lava_processes(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    log = tmp_path / "stderr.txt"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    with open(log, "wb") as stderr:
        # Own session: the test can signal the group like a terminal and find every descendant.
        proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "n.net")],
                                stdout=subprocess.PIPE, stderr=stderr, env=env,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while b"lava:" not in log.read_bytes():  # the progress bar shows once Lava runs
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "run_lava did not start within 60 s"
            time.sleep(0.2)
        time.sleep(1.0)
        assert len(_session_processes(proc.pid)) > 3  # Lava's processes are running
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    assert b"finished" not in out
    assert proc.returncode != 0 and "KeyboardInterrupt" in log.read_text()
    deadline = time.monotonic() + 10
    while _session_processes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _session_processes(proc.pid) == []
