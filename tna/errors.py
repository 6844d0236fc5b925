"""User-facing errors.

Raise `TnaError` for anything a user can fix (bad file, bad flag, missing data). The CLI prints
its message as one line, exits with code 2 and shows no traceback unless `--debug` is given.
The message names the file or field and says what to do.
"""


class TnaError(Exception):
    """An error caused by the user's input; its message is shown as one line."""

    exit_code = 2


class TnaBug(TnaError):
    """A check of tna's own results failed (e.g. a parity count beyond its bound): a bug in
    tna, not in the user's input or net. Shown as one line asking for a report, exit code 3."""

    exit_code = 3

    def __init__(self, what: str):
        super().__init__(f"tna bug: {what}; please report it (with the command and the file)")
