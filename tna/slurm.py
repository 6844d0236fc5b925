"""Submitting to SLURM with plain sbatch: the scripts, their options, the job ids.

Why plain sbatch and not submitit: every task runs a command a user can run by hand (`tna bench
--cell NAME`, `tna run --shard K/N`), so a task's log, a rerun by hand and another scheduler
need nothing but that command; no pickled Python function crosses to the node, and there is no
extra dependency. The commands run the same `tna` as the submitting process (its virtualenv
must be on the shared filesystem, as the data and the output folder).
"""
from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from tna.errors import TnaError

KEYS = ("partition", "time", "cpus", "mem", "gpus", "throttle", "account", "extra")


def tna_command() -> str:
    """The tna of this environment, quoted for a shell on a node of the cluster."""
    exe = Path(sys.executable).with_name("tna")
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "tna.cli"]
    return " ".join(shlex.quote(x) for x in cmd)


def sbatch() -> str:
    path = shutil.which("sbatch")
    if path is None:
        raise TnaError("--executor slurm needs SLURM's sbatch on the PATH (a login node of the "
                       "cluster); --executor local runs it here")
    return path


def options(slurm: dict, cpus: int, requeue: bool = True) -> list:
    """sbatch flags from a `slurm:` block (tna.slurm.KEYS); `cpus` when it gives none."""
    out = [f"--cpus-per-task={int(slurm.get('cpus') or cpus)}"] + (["--requeue"] if requeue
                                                                     else [])
    for key, flag in (("partition", "--partition"), ("time", "--time"), ("mem", "--mem"),
                      ("account", "--account")):
        if slurm.get(key):
            out.append(f"{flag}={slurm[key]}")
    if slurm.get("gpus"):
        out.append(f"--gpus={int(slurm['gpus'])}")
    return out + [str(x) for x in slurm.get("extra") or []]


def array(n: int, slurm: dict) -> str:
    """--array for n tasks, throttled by slurm['throttle'] (tasks at once)."""
    throttle = f"%{int(slurm['throttle'])}" if slurm.get("throttle") else ""
    return f"--array=0-{n - 1}{throttle}"


def submit(path: Path, flags: list, body: str, after: list = ()) -> str:
    """Write the script `path` (#SBATCH flags, then `body`) and submit it; the job id.
    `after`: job ids it waits for (afterany: it runs when they have ended, however)."""
    if after:
        flags = list(flags) + [f"--dependency=afterany:{':'.join(after)}"]
    path.write_text("#!/bin/bash\n" + "".join(f"#SBATCH {f}\n" for f in flags) + "set -e\n"
                    + body)
    try:
        p = subprocess.run([sbatch(), "--parsable", str(path)], capture_output=True, text=True,
                           timeout=120)
    except (OSError, subprocess.SubprocessError) as e:
        raise TnaError(f"sbatch {path} failed: {e}") from None
    if p.returncode != 0:
        err = (p.stderr.strip().splitlines() or ["no message"])[-1]
        raise TnaError(f"sbatch refused the job ({err}); check that SLURM answers here "
                       f"(sinfo) and the slurm options (partition, time, ...)")
    return p.stdout.strip().split(";")[0]
