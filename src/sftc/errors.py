"""User-facing errors: one line that names the problem and the fix."""


class SftcError(Exception):
    """An error caused by the user's input or environment (bad data, bad arguments).

    The CLI prints ``str(err)`` on one line and exits with status 2; it never shows a traceback.
    """


class DivergedError(SftcError):
    """A training or unlearning loss became NaN or infinite."""


class NameTaken(SftcError):
    """A name registered twice, from two modules (the message names both)."""
