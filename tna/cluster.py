"""Where this process runs: host, SLURM job and the CPUs it was given.

A bench folder may be shared by processes on several hosts (SLURM array tasks on a shared
filesystem): locks, cell records and temporary files name the host and job, and threads come
from the allocation, not from the machine's core count (a 2-CPU task on a 128-core node).
"""
from __future__ import annotations

import hashlib
import os
import socket
import time


def host() -> str:
    return socket.gethostname()


def host_tag() -> str:
    """8 hex digits naming this host in file names (tna.atomic's temporaries)."""
    return hashlib.sha1(host().encode()).hexdigest()[:8]


def allocated_cpus() -> int:
    """CPUs this process may use: SLURM's CPUs per task, else the affinity mask, else all."""
    slurm = os.environ.get("SLURM_CPUS_PER_TASK")
    if slurm and slurm.isdigit() and int(slurm) > 0:
        return int(slurm)
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):       # not on Linux
        return os.cpu_count() or 1


def job() -> dict:
    """The SLURM job of this process (job id, array task), empty outside SLURM."""
    env = os.environ
    job_id = env.get("SLURM_ARRAY_JOB_ID") or env.get("SLURM_JOB_ID")
    if not job_id:
        return {}
    out = {"job_id": job_id}
    if env.get("SLURM_ARRAY_TASK_ID"):
        out["array_index"] = int(env["SLURM_ARRAY_TASK_ID"])
    if env.get("SLURM_RESTART_COUNT"):
        out["restarts"] = int(env["SLURM_RESTART_COUNT"])
    return out


def where() -> dict:
    """Host, pid, SLURM job and the time: what a lock or a record says about its writer."""
    return {"host": host(), "pid": os.getpid(), **job(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
