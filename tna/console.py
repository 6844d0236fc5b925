"""Progress and notes for the user: one line each, on stderr, so stdout stays the result."""
from __future__ import annotations

import sys


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def progress_enabled(wanted: bool = True) -> bool:
    """Whether to draw progress bars: asked for and stderr (where they go) is a terminal. In
    a log file a bar is hundreds of KB of redraws; one line per epoch or phase says enough."""
    return bool(wanted) and sys.stderr.isatty()
