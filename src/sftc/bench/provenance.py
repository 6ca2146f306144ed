"""Where and how a session ran: the command, device, machine (threads, sftc commit) and versions."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from ..records import machine, package_versions


def session_record(command: str | None, device) -> dict:
    """One session of a benchmark or sweep as its manifest records it (``finished`` and
    ``wall_seconds`` are filled in when it ends)."""
    return {"command": command, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "device": str(device), "machine": session_machine(), "versions": package_versions(),
            "finished": None, "wall_seconds": None}


def session_machine() -> dict:
    """The machine as :func:`sftc.records.machine` describes it, plus the CPU count and the thread
    settings that decide CPU speed on a shared machine."""
    info = machine()
    info["cpu_count"] = os.cpu_count()
    info["OMP_NUM_THREADS"] = os.environ.get("OMP_NUM_THREADS")
    commit = code_commit()
    if commit:
        info["sftc_commit"] = commit
    return info


def code_commit() -> str | None:
    """The git commit of the sftc source in use (``+dirty`` with uncommitted changes), if any."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, text=True,
                              capture_output=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=here.parent,
                               text=True, capture_output=True, timeout=10)
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None
