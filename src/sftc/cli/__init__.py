"""Command line: ``sftc <command>``. Thin: parse arguments, call the API, print.

Every module in :mod:`sftc.cli.commands` defines ``register(subparsers)``; it is picked up
automatically, so a new command is one new file. Registering a command imports nothing heavy (its
help quotes :mod:`sftc.cli.catalog`); torch and the rest are imported by its handler, so that
``sftc --help`` and ``sftc COMMAND --help`` start in a fraction of a second.

Every command takes ``--plugin MODULE_OR_FILE`` (repeatable, also before the command name): the
modules are imported before the command runs, so that the methods, models and datasets they
register are known to it (:mod:`sftc.plugins`).

What the user sees when something goes wrong is decided here, once for every command: a problem
with the input is one line ``sftc COMMAND: error: ...`` and exit status 2 (argparse's errors
included); a warning is one line ``sftc: warning: ...``; Ctrl-C and SIGTERM remove partial outputs
and exit 130 / 143; an unexpected failure is one line and exit 1 (``SFTC_DEBUG=1`` shows the
traceback). Under torchrun every rank runs the command and rank 0 alone speaks (:mod:`.job`).
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import io
import os
import pkgutil
import re
import signal
import sys
import warnings

from ..errors import SftcError
from ..settings import debug
from .exit_codes import BAD_INPUT, Terminated, exit_code

DESCRIPTION = """\
sftc: machine unlearning for PyTorch image classifiers (SFTC, EICC 2024, and its baselines).

A typical session on the embedded digits data:
  sftc demo --out demo/                      # everything at once: train, unlearn, evaluate, report
  sftc train   --dataset digits --out runs/original
  sftc train   --dataset digits --subset retain --forget random:0.1 --out runs/retrained
  sftc unlearn --dataset digits --forget random:0.1 --checkpoint runs/original/model.pt \\
               --retrained runs/retrained/model.pt --method sftc --out runs/sftc
  sftc evaluate --dataset digits --forget random:0.1 --original runs/original/model.pt \\
               --unlearned runs/sftc/model.pt --retrained runs/retrained/model.pt
  sftc audit   --dataset digits --forget random:0.1 --original runs/original/model.pt \\
               --unlearned runs/sftc/model.pt --retrained runs/retrained/model.pt --out runs/audit
Your own method, model or dataset in a file: add --plugin my_method.py to any command.
Run 'sftc COMMAND --help' for each command's options.
"""

PLUGIN_HELP = ("import this module (my_pkg.methods) or .py file before the command runs, so that "
               "the methods, models and datasets it registers can be named (repeatable)")

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line naming the command, the problem and --help."""

    def error(self, message: str):  # noqa: D401 - argparse's signature
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def one_line(text: str) -> str:
    """The first non-empty line of ``text`` without terminal colour codes."""
    lines = [line.strip() for line in _ANSI.sub("", str(text)).splitlines() if line.strip()]
    return lines[0] if lines else ""


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line ``sftc: warning: ...`` (no source line, no colour codes)."""
    print(f"sftc: warning: {one_line(message)}", file=file or sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="sftc", description=DESCRIPTION, allow_abbrev=False,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"sftc {__version__}")
    parser.add_argument("--plugin", action="append", dest="plugins_first", default=[],
                        metavar="MODULE_OR_FILE", help=PLUGIN_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    add_parser = sub.add_parser

    def add_parser_exact(name, **kwargs):
        # No abbreviations: '--c 0.1' (SFTC's confusion fraction) must not become '--checkpoint'.
        kwargs.setdefault("allow_abbrev", False)
        command = add_parser(name, **kwargs)
        command.add_argument("--plugin", action="append", dest="plugins", default=[],
                             metavar="MODULE_OR_FILE", help=PLUGIN_HELP)
        return command

    sub.add_parser = add_parser_exact
    from . import commands

    names = sorted(m.name for m in pkgutil.iter_modules(commands.__path__))
    for name in names:
        importlib.import_module(f"{commands.__name__}.{name}").register(sub)
    return parser


def _raise_terminated(signum, frame):
    raise Terminated()


#: Whether Ctrl-C is watched (SIGINT handled here) and came: a KeyboardInterrupt without it was
#: raised by code (a plugin's), which is a failure, not an interruption.
INTERRUPTS = {"watched": False, "by_signal": False}


def _raise_interrupted(signum, frame):
    INTERRUPTS["by_signal"] = True
    raise KeyboardInterrupt()


def _plugins_for_help(argv: list[str]) -> int | None:
    """With ``--help`` and ``--plugin X`` both given, import the plugins before the parsers are
    built, so that the help lists their methods; a plugin that fails is one line, exit 2."""
    if not any(a in ("-h", "--help") for a in argv):
        return None
    specs = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--plugin"]
    specs += [a.split("=", 1)[1] for a in argv if a.startswith("--plugin=")]
    if not specs:
        return None
    from ..plugins import load_plugins

    try:
        load_plugins(specs)
    except SftcError as exc:
        print(f"sftc: error: {one_line(exc)}", file=sys.stderr)
        return BAD_INPUT
    return None


def main(argv: list[str] | None = None) -> int:
    from .. import distributed

    failed = _plugins_for_help(sys.argv[1:] if argv is None else list(argv))
    if failed is not None:
        return failed
    parser = build_parser()
    ranked = distributed.launched()   # one of several processes torchrun started
    with silenced(ranked and distributed.env_rank() != 0):   # rank 0 alone speaks
        try:
            args, extra = parser.parse_known_args(argv)
            if args.command is not None and extra and not getattr(args, "accepts_extra", False):
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
        except SystemExit as done:  # a parse error (one line, already printed), --help, --version
            if done.code in (0, None):
                raise
            return int(done.code) if isinstance(done.code, int) else 2
        if args.command is None:
            parser.print_help()
            return 2
    name = f"sftc {args.command}"
    previous = {}
    for signum, handler, default in ((signal.SIGTERM, _raise_terminated, signal.SIG_DFL),
                                     (signal.SIGINT, _raise_interrupted,
                                      signal.default_int_handler)):
        if signal.getsignal(signum) is default:
            try:
                previous[signum] = signal.signal(signum, handler)
            except ValueError:  # not the main thread (e.g. called from a worker): leave it alone
                pass
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN   # no Ctrl-C can come
    INTERRUPTS.update(watched=signal.SIGINT in previous or ignored, by_signal=False)
    try:
        if ranked:
            from .job import run_as_rank

            return run_as_rank(args, extra, name)
        code = run_command(args, extra, name)
        try:
            sys.stdout.flush()        # a closed pipe shows here, not in the exit's own flush
        except BrokenPipeError:
            _drop_stdout()
        return code
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        INTERRUPTS.update(watched=False, by_signal=False)


def say(text: str, exc: BaseException | None = None) -> None:
    print(text, file=sys.stderr)


def run_command(args, extra, name: str, report=say, on_error=None) -> int:
    """Run the command's handler; map every failure to one line (``report(text, exc)``) and an
    exit status. ``on_error(exc)`` is told of the failure first."""
    try:
        with warnings.catch_warnings():
            warnings.showwarning = show_warning
            from ..plugins import load_plugins

            from .checks import check_bounds
            from .logs import progress_output

            args.plugins = [*args.plugins_first, *getattr(args, "plugins", []),
                            *(getattr(args, "plugins_after", None) or [])]
            del args.plugins_first
            load_plugins(args.plugins)
            check_bounds(args)
            with progress_output(name, bool(getattr(args, "quiet", False))):
                return int(args.handler(args, extra) or 0)
    except BrokenPipeError:           # 'sftc deploy verify | head -1': the reader had enough
        _drop_stdout()
        return 0
    except BaseException as exc:
        if on_error is not None:
            on_error(exc)
        if isinstance(exc, Exception) and not isinstance(exc, (SftcError, OSError)) \
                and debug():
            raise
        code, text = failure(exc, name)
        if code is None:
            raise
        report(text, exc)
        return code


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush meets no closed pipe
    (no "Broken pipe" message after a reader such as ``head`` exits)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):   # stdout is no file (a test's capture)
        pass


def failure(exc: BaseException, name: str) -> tuple[int | None, str]:
    """Exit status (:mod:`sftc.cli.exit_codes`) and the one line that a failure of command
    ``name`` prints (None: re-raise)."""
    from .. import distributed

    launched = distributed.launched()
    code = exit_code(exc, launched)
    if isinstance(exc, Exception) and launched and distributed.is_comm_failure(exc):
        text = str(exc) if isinstance(exc, distributed.LostContact) else \
            distributed.lost_contact_text(exc)
        return code, f"{name}: error: {one_line(text)}"
    if isinstance(exc, SftcError):
        return code, f"{name}: error: {one_line(exc)}"
    if isinstance(exc, Terminated):
        during = " (under torchrun: another rank of this job failed, or the job was stopped)" \
            if launched else ""
        return code, f"{name}: terminated{during}; finished outputs were kept, partial ones removed"
    if isinstance(exc, KeyboardInterrupt) and (INTERRUPTS["by_signal"] or not INTERRUPTS["watched"]):
        return code, f"{name}: interrupted; finished outputs were kept, partial ones removed"
    if isinstance(exc, (SystemExit, KeyboardInterrupt)):   # raised by code, a plugin's: a failure
        what = (f"called sys.exit({exc.code!r})" if isinstance(exc, SystemExit)
                else "raised KeyboardInterrupt (no Ctrl-C came)")
        return BAD_INPUT, (f"{name}: error: code {what} in {raised_at(exc)} while the command "
                           "ran; the command failed and wrote nothing: a plugin must raise an "
                           "exception to fail, never exit")
    if is_out_of_memory(exc):
        return BAD_INPUT, (f"{name}: error: out of memory: {one_line(exc)[:160]}; lower "
                           "--batch-size or --image-size, or free memory")
    if isinstance(exc, OSError):  # the file system said no (disk full, permissions, ...)
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        fix = ("; free space on that disk or write elsewhere"
               if getattr(exc, "errno", None) == errno.ENOSPC else "")
        return code, f"{name}: error: {exc.strerror or one_line(exc)}{where}{fix}"
    if isinstance(exc, Exception):   # a bug, or an input nobody foresaw: one line, no traceback
        return code, (f"{name}: internal error: {type(exc).__name__}: {one_line(exc)} (please "
                      "report it; SFTC_DEBUG=1 shows the traceback)")
    return None, ""


def raised_at(exc: BaseException) -> str:
    """Where ``exc`` was raised: ``file:line (function)``, the file relative to the working
    directory when it lies below it."""
    tb = exc.__traceback__
    if tb is None:
        return "an unknown place"
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    path = code.co_filename
    try:
        path = os.path.relpath(path) if not os.path.relpath(path).startswith("..") else path
    except ValueError:
        pass
    return f"{path}:{tb.tb_lineno} ({code.co_name})"


def is_out_of_memory(exc: BaseException) -> bool:
    """numpy's and Python's MemoryError, torch's out-of-memory errors (CPU and GPU)."""
    if isinstance(exc, MemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("can't allocate memory" in text
                                              or "out of memory" in text.lower())


@contextlib.contextmanager
def silenced(quiet: bool):
    """Nothing printed inside the block when ``quiet`` (the ranks other than 0 of a job)."""
    if not quiet:
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield
