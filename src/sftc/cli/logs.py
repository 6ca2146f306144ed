"""Progress for people reading a log: bars as plain lines, and a heartbeat under ``--quiet``.

On a terminal the progress bars (tqdm) redraw one line with carriage returns. Written into a
file, the same bars are thousands of carriage returns on one line. So while a command runs:

* stderr a terminal, no ``--quiet``: nothing changes;
* stderr a file or a pipe, no ``--quiet``: :class:`BarsAsLines` stands in for stderr; every
  other line passes through unchanged, and a bar's latest state is written as one plain line
  when the first bar starts and then at most every :data:`LOG_EVERY` seconds;
* ``--quiet``: no bars, and a :class:`Heartbeat` line every :data:`QUIET_EVERY` seconds (the
  command, time so far, and the phase it is in with its rate and time left, :mod:`sftc.phase`:
  the reference models being trained, the search's trials), so that a long quiet job is seen to
  be alive and how long it has left.

``SFTC_HEARTBEAT_SECONDS`` sets both intervals. Nothing here changes what a command computes.
"""
from __future__ import annotations

import contextlib
import re
import sys
import threading
import time

LOG_EVERY = 10.0
QUIET_EVERY = 60.0
INTERVAL_ENV = "SFTC_HEARTBEAT_SECONDS"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_PIECES = re.compile(r"(\r|\n)")


def clock(seconds: float) -> str:
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def interval(default: float) -> float:
    """The interval of :data:`INTERVAL_ENV` (seconds), else ``default``."""
    from ..settings import heartbeat_seconds

    return heartbeat_seconds(default)


class BarsAsLines:
    """A text stream in front of ``stream`` that turns carriage-return redraws into lines."""

    def __init__(self, stream, every: float = LOG_EVERY, now=time.monotonic):
        self.stream, self.every, self.now = stream, every, now
        self.line = ""          # the current line since its last carriage return
        self.bar = False        # the current line is being redrawn (a progress bar)
        self.written = None     # when a bar's state was last written
        self.lock = threading.Lock()

    def write(self, text: str) -> int:
        with self.lock:
            if self.bar and text[:1] not in ("\r", "\n") and _ANSI.sub("", text).strip():
                self.line, self.bar = "", False   # other text after a bar: a line of its own
            for piece in _PIECES.split(text):
                if piece == "\r":
                    self.line, self.bar = "", True
                elif piece == "\n":
                    self._end_line()
                else:
                    self.line += piece
            if self.bar:
                state = _ANSI.sub("", self.line).strip()
                due = self.written is None or self.now() - self.written >= self.every
                if state and due:
                    self._emit(state)
        return len(text)

    def _end_line(self) -> None:
        text = _ANSI.sub("", self.line).rstrip()
        if self.bar:   # a bar moved down to make room for another, or left on screen
            due = self.written is None or self.now() - self.written >= self.every
            if text.strip() and due:
                self._emit(text.strip())
        elif text.strip():
            self.stream.write(text + "\n")
        self.line, self.bar = "", False

    def _emit(self, state: str) -> None:
        self.stream.write(state + "\n")
        self.stream.flush()
        self.written = self.now()

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False

    def close_line(self) -> None:
        """Write out a last line that was never ended (no bar state: those are transient)."""
        with self.lock:
            if not self.bar and _ANSI.sub("", self.line).strip():
                self.stream.write(_ANSI.sub("", self.line) + "\n")
            self.line, self.bar = "", False

    def __getattr__(self, name):
        return getattr(self.stream, name)


class Heartbeat:
    """A line ``NAME: still working (M:SS so far ...)`` every ``every`` seconds on ``stream``."""

    def __init__(self, name: str, stream, every: float = QUIET_EVERY):
        self.name, self.stream, self.every = name, stream, every
        self.started = time.monotonic()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="sftc-heartbeat", daemon=True)

    def _run(self) -> None:
        from ..phase import describe

        while not self.stopped.wait(self.every):
            doing = describe()
            now = f"; {doing}" if doing else ""
            print(f"{self.name}: still working ({clock(time.monotonic() - self.started)} so "
                  f"far{now}; --quiet hides the progress bars)", file=self.stream, flush=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)


@contextlib.contextmanager
def progress_output(name: str, quiet: bool):
    """The progress display of one command (module docstring)."""
    if quiet:
        with Heartbeat(name, sys.stderr, interval(QUIET_EVERY)):
            yield
        return
    isatty = getattr(sys.stderr, "isatty", None)
    if isatty is not None and isatty():
        yield
        return
    real = sys.stderr
    lines = BarsAsLines(real, interval(LOG_EVERY))
    sys.stderr = lines
    try:
        yield
    finally:
        lines.close_line()
        if sys.stderr is lines:
            sys.stderr = real
