"""The exit status of a command, in one table: a single process and every rank of a torchrun job
(:mod:`sftc.cli.job`, whose ranks also send these to each other before the work starts) map a
failure to the same number.

====================================================  ======
what ended the command                                status
====================================================  ======
success                                               0
a bug, or an input nobody foresaw (one line)          1
under torchrun: contact with another rank was lost    1
bad input or environment (``SftcError``)              2
the file system said no (``OSError``: disk full, ...) 2
out of memory; code that calls ``sys.exit`` or        2
raises ``KeyboardInterrupt`` itself (a plugin's)
Ctrl-C (``KeyboardInterrupt``)                        130
SIGTERM (:class:`Terminated`)                         143
====================================================  ======
"""
from __future__ import annotations

from ..distributed import is_comm_failure
from ..errors import SftcError

OK = 0
INTERNAL = 1
LOST_CONTACT = 1
BAD_INPUT = 2
INTERRUPTED = 130
TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that partial outputs are cleaned up as on Ctrl-C."""


def exit_code(exc: BaseException, launched: bool = False) -> int | None:
    """The status for ``exc`` (None: not a failure the command line handles, e.g.
    ``SystemExit``); ``launched``: this process is one rank of a torchrun job."""
    if isinstance(exc, Exception) and launched and is_comm_failure(exc):
        return LOST_CONTACT
    if isinstance(exc, SftcError):
        return BAD_INPUT
    if isinstance(exc, Terminated):
        return TERMINATED
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(exc, OSError):
        return BAD_INPUT
    if isinstance(exc, Exception):
        return INTERNAL
    return None
