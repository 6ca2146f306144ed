"""A command run as one rank of a torchrun job: who speaks, who writes, and one exit status.

``torchrun --nproc-per-node N -m sftc COMMAND ...`` runs COMMAND in N processes. Each joins the
job (:func:`sftc.engine.process_group.job`), runs the command's handler (which states what it
works on, :func:`sftc.cli.ranks.agree`, and writes on rank 0 only), and then:

* **rank 0 alone speaks.** The other ranks print nothing, except a failure that is their own
  (not an input error, which every rank meets alike, nor a lost connection, which rank 0 reports),
  prefixed with their rank;
* **a failure before the work starts** (bad input on any rank, ranks that disagree) is sent to
  every rank, so all stop together: rank 0 prints one line, every rank exits with its status;
* **a failure during the work** ends this rank at once; torchrun then stops the others (and a
  rank whose peer vanished sees its connections close), so nothing waits forever;
* **at the end** every rank waits for the others (rank 0 may still be writing) and all exit with
  the same status (:func:`sftc.cli.ranks.conclude`; the statuses: :mod:`sftc.cli.exit_codes`).

Only the commands that know how to share their work run under torchrun (``distributed=True``
in their defaults: train, unlearn, audit, benchmark); any other is refused in one line.
"""
from __future__ import annotations

import sys

from .. import distributed as process_group
from ..errors import SftcError
from . import ranks, run_command, silenced
from .exit_codes import BAD_INPUT, exit_code


def run_as_rank(args, extra, name: str) -> int:
    rank = process_group.env_rank()
    stderr = sys.stderr   # the real one: the other ranks' is silenced while the command runs

    def report(text: str, exc: BaseException | None = None) -> None:
        own = exc is not None and not isinstance(exc, (SftcError, KeyboardInterrupt)) \
            and not process_group.is_comm_failure(exc)
        if rank == 0:
            print(text, file=stderr, flush=True)
        elif own:
            print(f"[rank {rank}] {text}", file=stderr, flush=True)

    if not getattr(args, "distributed", False):
        report(f"{name}: error: {name} runs as one process; start it without torchrun (under "
               "torchrun: sftc train, unlearn, audit and benchmark)")
        return BAD_INPUT
    failed: list[BaseException] = []

    def on_error(exc: BaseException) -> None:
        failed.append(exc)
        if not isinstance(exc, KeyboardInterrupt):   # Ctrl-C, SIGTERM: stop at once
            ranks.report_failure(exc)

    try:
        with process_group.job(device=getattr(args, "device", "auto")):
            with silenced(rank != 0):
                code = run_command(args, extra, name, report=report, on_error=on_error)
            if not failed:
                code = ranks.conclude(code)
            return code
    except SftcError as exc:   # joining the job failed, or the end could not be agreed
        report(f"{name}: error: {exc}", exc)
        return exit_code(exc, launched=True)
