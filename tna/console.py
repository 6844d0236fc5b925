"""Progress and notes for the user: one line each, on stderr, so stdout stays the result."""
from __future__ import annotations

import sys


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
