"""Atomic file writes: write to a temporary name in the same folder, fsync, then rename.

A reader (or a process killed with -9 half-way) sees either the previous complete file or the
new complete file, never a partial one. The temporary file is `.NAME.hHOST.PID.RANDOM.tmp` next
to NAME; readers never open such names. A writer killed with -9 leaves its temporary file behind:
the next atomic write of NAME on the same host removes the ones whose writing process no longer
runs.
"""
import contextlib
import os
import re
import secrets
from pathlib import Path

from tna.cluster import host_tag


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:    # another user's live process
        return True
    return True


def remove_stale_temps(folder, name: str | None = None) -> list:
    """Delete temporary files `.NAME.hHOST.PID.RANDOM.tmp` in `folder` whose process PID has
    exited on this host (tna.cluster.host_tag; names without a host are this host's, as tna
    wrote them before). A temporary of another host is left alone: only that host can tell
    whether its writer lives (a folder shared by SLURM tasks).

    `name` limits it to the temporaries of one file (default: of every file). Only names of
    exactly that pattern are touched, never those of a running process (it may be writing
    them now). Returns the paths removed.
    """
    folder = Path(folder)
    stem = re.escape(name) if name is not None else r".+?"
    pattern = re.compile(rf"\.{stem}\.(?:h([0-9a-f]{{8}})\.)?(\d+)\.[0-9a-f]{{8}}\.tmp")
    here = host_tag()
    removed = []
    try:
        entries = os.listdir(folder)
    except OSError:
        return removed
    for entry in entries:
        m = pattern.fullmatch(entry)
        if m and m[1] in (None, here) and int(m[2]) != os.getpid() and not _pid_alive(int(m[2])):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(folder / entry)
                removed.append(folder / entry)
    return removed


def _create_temp(path: Path) -> Path:
    """A new empty file `.NAME.hHOST.PID.RANDOM.tmp`, created with the umask's permissions."""
    while True:
        tmp = path.parent / f".{path.name}.h{host_tag()}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return tmp
        except FileExistsError:   # 2**32 names per process: a clash is rare, try another
            continue


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to `path`; on success it replaces `path` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent, path.name)
    tmp = _create_temp(path)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):     # make the rename itself durable (power loss)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_text(path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
