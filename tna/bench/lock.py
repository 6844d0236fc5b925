"""One process runs a cell, on whichever host: an exclusive lock file in the cell's folder.

`<cell>/lock.json` is created with O_EXCL (atomic on local filesystems and NFSv3+) and holds
its holder's host, pid, SLURM job and time (tna.cluster.where). A lock is stale, and taken
over, when its holder is on this host and its pid has exited, or when it is this SLURM array
task's own earlier attempt (a preempted or requeued task). A lock held on another host cannot
be judged from here: the cell is refused in one line, and `--force` takes it over.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from tna import cluster
from tna.console import log
from tna.errors import TnaError

LOCK = "lock.json"


class CellBusy(TnaError):
    """The cell is being run by another process."""


def holder(folder: Path) -> dict | None:
    """The lock's holder (None without a lock; {} while it is being written or unreadable)."""
    path = Path(folder) / LOCK
    for _ in range(5):
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except OSError:
            return {}
        try:
            d = json.loads(text)
            return d if isinstance(d, dict) else {}
        except ValueError:
            time.sleep(0.05)           # created, not yet written
    return {}


def describe(h: dict) -> str:
    if not h:
        return "an unknown process (its lock is empty)"
    job = f", SLURM job {h['job_id']}" + (f"_{h['array_index']}" if "array_index" in h else "") \
        if h.get("job_id") else ""
    return f"pid {h.get('pid', '?')} on {h.get('host', '?')}{job}, since {h.get('time', '?')}"


def stale(h: dict, path: Path) -> str | None:
    """Why the lock `h` (at `path`) is dead, or None when it may be alive."""
    me = cluster.where()
    if not h:          # empty for a minute: its writer died between create and write
        age = time.time() - path.stat().st_mtime if path.exists() else 0
        return "its writer died before writing it" if age > 60 else None
    if h.get("job_id") and h.get("job_id") == me.get("job_id") and \
            h.get("array_index") == me.get("array_index"):
        return "this SLURM task's earlier attempt"
    if h.get("host") == me["host"]:
        pid = int(h.get("pid", -1))
        if pid == os.getpid():
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return f"pid {pid} has exited"
        except (PermissionError, OverflowError, ValueError):
            return None
    return None


@contextlib.contextmanager
def cell_lock(folder, name: str, force: bool = False):
    """Hold `folder`'s lock while the block runs; CellBusy when another process holds it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK
    me = cluster.where()
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            h = holder(folder)
            if h is None:
                continue                       # released meanwhile: try again
            why = "--force" if force else stale(h, path)
            if why is None:
                raise CellBusy(f"cell {name} is being run by {describe(h)}; if that run is "
                               f"gone (squeue, ps), run again with --force") from None
            log(f"  {name}: taking over the lock of {describe(h)} ({why})")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    else:
        raise CellBusy(f"cell {name}: its lock changed hands while taking it; run again")
    try:
        yield me
    finally:
        if holder(folder) == me:               # only our own lock (never a taker's)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
