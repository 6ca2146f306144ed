"""One table of exit statuses (sftc.cli.exit_codes): what a single process prints and exits with,
and what a rank of a torchrun job sends the others before the work starts, agree."""
import errno

import sftc
from sftc.cli import failure
from sftc.cli.exit_codes import Terminated, exit_code
from sftc.engine.process_group import LostContact


def test_every_failure_has_one_status_everywhere():
    cases = [(sftc.SftcError("bad --forget"), 2),
             (OSError(errno.ENOSPC, "No space left on device", "out/model.pt"), 2),
             (Terminated(), 143), (KeyboardInterrupt(), 130), (ValueError("a bug"), 1)]
    for exc, code in cases:
        assert exit_code(exc) == code
        assert failure(exc, "sftc train")[0] == code
    assert exit_code(LostContact("gone"), launched=True) == 1
    assert exit_code(RuntimeError("Connection closed by peer (gloo)"), launched=True) == 1
    assert exit_code(RuntimeError("Connection closed by peer (gloo)"), launched=False) == 1
    # code that calls sys.exit while a command runs (a plugin's) is a failure of the command
    assert exit_code(SystemExit(0)) is None and failure(SystemExit(0), "sftc x")[0] == 2
