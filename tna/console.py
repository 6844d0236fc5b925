"""Progress and notes for the user: one line each, on stderr, so stdout stays the result."""
from __future__ import annotations

import sys


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def progress_enabled(wanted: bool = True) -> bool:
    """Whether to draw progress bars: asked for and stderr (where they go) is a terminal. In
    a log file a bar is hundreds of KB of redraws; one line per epoch or phase says enough."""
    return bool(wanted) and sys.stderr.isatty()


def count(n: int, noun: str, plural: str | None = None) -> str:
    """'1 sample', '2 samples': a count with its noun in the right number."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def duration(seconds: float) -> str:
    """'16 s' under a minute, '2.5 min' above: a cell of seconds never reads '0.0 min'."""
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.1f} min"
