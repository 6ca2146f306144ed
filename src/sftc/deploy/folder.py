"""A deployment folder: where everything lies, its lock, and what its ledger says so far.

::

    DEPLOY/
      ledger.jsonl          the hash-chained ledger (sftc.deploy.ledger)
      published.json        the published pointer: version, model SHA-256, ledger head and count
      samples.json          the training set as sample ids with content SHA-256 (no data)
      versions/v0/model.pt  a copy of the deployed checkpoint
      versions/vN/          model.pt, audits/<pseudonym>.json, search.json, outcome.json
      attempts/<seq>-<pseudonym>/  the audits of a request that did not meet the policy
                            (no model); the retention policy removes old versions and attempts
      .work/                the request being applied (a killed one's is rolled back)

The lock is ``.DEPLOY.lock`` beside the folder's resolved path (:func:`sftc.io.run_lock`, the
same one ``deploy init`` holds while it creates the folder) and an ``flock`` on the folder itself,
which every alias of it (a symbolic link, ``a/../a``, a bind mount) shares: one command writes a
deployment at a time, a second is refused in one line.
"""
from __future__ import annotations

import errno
import fcntl
import os
import signal
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import SftcError
from ..io import real_path, run_lock
from .entries import check_published, check_shapes
from .ledger import Ledger, check_chain, check_head, read_pointer

#: The test-only hook: ``SFTC_DEPLOY_KILL_AT=<point>`` SIGKILLs the process at that point of
#: ``deploy forget`` (tests/test_deploy.py kills it at three points).
KILL_AT = "SFTC_DEPLOY_KILL_AT"


def fault_point(name: str) -> None:
    """Die here, as ``kill -9`` would, when the test hook names this point."""
    if os.environ.get(KILL_AT) == name:
        os.kill(os.getpid(), signal.SIGKILL)


class Deployment:
    """The paths of one deployment folder."""

    def __init__(self, root: str | Path):
        self.root = real_path(Path(root).expanduser())   # one lock for every alias
        self.ledger = Ledger(self.root / "ledger.jsonl")
        self.pointer_path = self.root / "published.json"
        self.samples_path = self.root / "samples.json"
        self.versions = self.root / "versions"
        self.attempts = self.root / "attempts"
        self.work = self.root / ".work"

    def version_dir(self, n: int) -> Path:
        return self.versions / f"v{n}"

    def relative(self, path: Path) -> str:
        return Path(path).relative_to(self.root).as_posix()

    def require(self) -> "Deployment":
        if not self.ledger.path.is_file() and not self.pointer_path.is_file():
            raise SftcError(f"--dir {self.root} is not a deployment (no ledger.jsonl); create "
                            "one with 'sftc deploy init --dir DIR --checkpoint model.pt'")
        return self

    @contextmanager
    def lock(self):
        """The deployment's lock (refused in one line while another command holds it): the
        lock file of its resolved path, and an ``flock`` on the folder that its aliases share."""
        with run_lock(self.root, what="deployment"):
            fd = _lock_folder(self.root)
            try:
                yield
            finally:
                if fd is not None:
                    os.close(fd)

    def read(self):
        """(entries, torn line, pointer, entries beyond the pointer), chain and head checked."""
        read = self.ledger.read()
        check_chain(read.entries, self.ledger.path)
        check_shapes(read.entries)
        pointer = read_pointer(self.pointer_path)
        beyond = check_head(read.entries, pointer, self.ledger.path)
        return read, pointer, beyond


def _lock_folder(root: Path) -> int | None:
    """An exclusive ``flock`` on the folder (its inode: every path to it); None where the folder
    is absent or its file system has no locks."""
    try:
        fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise SftcError(f"another sftc run is writing deployment {root} (through another "
                            "path to the same folder); wait for it to finish") from None
        return None
    return fd


@dataclass
class History:
    """What the ledger's entries say: the deployment's settings and every published request."""

    entries: list[dict]

    @property
    def init(self) -> dict:
        if not self.entries or self.entries[0].get("kind") != "init":
            raise SftcError("the ledger does not begin with the deployment's init entry")
        return self.entries[0]["payload"]

    @property
    def published(self) -> list[dict]:
        """The payloads of the ``published`` entries, each checked to be one sftc writes."""
        done = []
        for entry in self.entries:
            if entry.get("kind") == "published":
                done.append(check_published(entry, len(done) + 1))
        return done

    @property
    def version(self) -> int:
        """The latest published version (0: the deployed checkpoint)."""
        done = self.published
        return done[-1]["version"] if done else 0

    def model_sha256(self, version: int) -> str:
        if version == 0:
            return self.init["model"]["sha256"]
        return next(p["child"]["sha256"] for p in self.published if p["version"] == version)

    def removed_ids(self) -> set[str]:
        return {s["id"] for p in self.published for s in p["removed"]}

    def request(self, request_id: str) -> dict | None:
        return next((p for p in self.published if p["request"] == request_id), None)

    def last_audit(self, request_id: str) -> tuple[int, dict] | None:
        """The most recent audit of a request on record: (version audited, its summary)."""
        for payload in reversed(self.published):
            for audit in payload["audits"]:
                if audit["request"] == request_id and audit.get("reaudited", True):
                    return payload["version"], audit
        return None

    def pending_intent(self) -> dict | None:
        """The last entry when it is an intent with no outcome after it (an interrupted
        ``forget``)."""
        last = self.entries[-1] if self.entries else None
        return last if last is not None and last["kind"] == "intent" else None
