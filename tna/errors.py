"""User-facing errors.

Raise `TnaError` for anything a user can fix (bad file, bad flag, missing data). The CLI prints
its message as one line, exits with code 2 and shows no traceback unless `--debug` is given.
The message names the file or field and says what to do.
"""


class TnaError(Exception):
    """An error caused by the user's input; its message is shown as one line."""

    exit_code = 2
