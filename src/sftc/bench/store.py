"""The output directory of a benchmark or sweep: manifest, resume check, layout, atomic I/O.

The manifest holds the configuration (checked on resume) and the sessions; :meth:`Store.open` is
the one way in. Every result carries the fingerprint of the code that computed it
(:mod:`sftc.codeprint`); one computed by other code is *stale*: it is not used, but computed again
and overwritten, and :meth:`Store.stale_note` says so in one line.

Layout (everything written as it finishes; a file is whole or absent)::

    out/benchmark.json | sweep.json             configuration (checked on resume) and sessions
    out/references/seed-S.json, seed-S.pt       M and M_R of seed S: accuracies, logits, times
    out/runs/METHOD/lr-LR/seed-S/result.json    benchmark: per-epoch accuracies (written last)
    out/runs/METHOD/lr-LR/seed-S/logits.pt      benchmark: per-epoch logits on forget/test/members
    out/final/ROW/...seed-S.json                benchmark: JS and MIA at the kept setting
    out/runs/PARAM-VALUE/seed-S.json            sweep: one point's metrics
"""
from __future__ import annotations

import io
import json
import time
from contextlib import ExitStack
from pathlib import Path

import torch

from ..errors import SftcError
from ..io import PARTIAL, atomic_write_bytes, atomic_write_json, run_lock
from .config import number_text
from .provenance import session_record


class Store:
    """One output directory; :meth:`open` is the one way in (it locks ``out``, then creates or
    checks it). The lock is held until :meth:`close`: two benchmarks into one ``--out`` cannot
    mix their grids, the second is refused."""

    def __init__(self, out: str | Path, kind: str):
        self.out = Path(out)
        self.kind = kind                                  # "benchmark" or "sweep"
        self.manifest_path = self.out / f"{kind}.json"
        self.manifest: dict | None = None
        self.resuming = False
        self._started = 0.0
        self._lock = ExitStack()
        self.stale: dict[str, list[str]] = {}    # path -> what changed, for stale_note()

    @classmethod
    def open(cls, out: str | Path, config, *, kind: str, resume: bool = False,
             member: bool = False) -> "Store":
        """The store at ``out`` for ``config``: a new (empty) directory, or one holding the same
        ``kind`` with the same configuration (then ``resuming``). Anything else is refused.

        ``member``: a rank other than 0 of a torchrun job. Rank 0 holds the lock and checks the
        directory for the whole job (the ranks compare their configurations at start,
        :func:`sftc.cli.ranks.agree`); the members only write their own units' files."""
        store = cls(out, kind)
        if member:
            return store
        store._lock.enter_context(run_lock(store.out.resolve()))
        try:
            store.resuming = store._check(config, resume)
            store._remove_partial_files()
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        """Release ``out`` for other runs."""
        self._lock.close()

    def __del__(self):
        self._lock.close()

    def _remove_partial_files(self) -> None:
        """Files a killed run was writing (never read: a result is whole or absent)."""
        if self.out.is_dir():
            for path in self.out.rglob(f".*{PARTIAL}"):
                path.unlink(missing_ok=True)

    def _check(self, config, resume: bool) -> bool:
        out, path, kind = self.out, self.manifest_path, self.kind
        if out.exists() and not out.is_dir():
            raise SftcError(f"--out {out} exists and is not a directory; choose another path")
        if path.is_file():
            try:
                stored = json.loads(path.read_text())["config"]
            except (OSError, json.JSONDecodeError, KeyError):
                raise SftcError(f"{path} is unreadable; remove it or choose a new --out") from None
            current = json.loads(json.dumps(config.to_dict()))
            if stored != current:
                raise SftcError(f"--out {out} holds a {kind} with different arguments, refusing to "
                                f"mix results ({describe_difference(stored, current)}); rerun with "
                                "the same arguments or choose a new --out")
            return True
        if resume:
            raise SftcError(f"nothing to resume: {out} holds no {path.name}; drop --resume to start")
        if out.is_dir() and any(p for p in out.iterdir() if not p.name.startswith(".")):
            raise SftcError(f"--out {out} already holds files that are not a {kind}; choose a new "
                            "directory")
        return False

    # -- the manifest ----------------------------------------------------------------------
    def begin_session(self, config, command: str | None, device, **extra) -> None:
        """Record a new session (command, machine, versions, ``extra``) in the manifest."""
        if self.manifest is None:
            self.manifest = (json.loads(self.manifest_path.read_text())
                             if self.manifest_path.is_file()
                             else {"kind": f"sftc {self.kind}", "config": config.to_dict(),
                                   "sessions": []})
        self.manifest["sessions"].append({**session_record(command, device), **extra})
        self._started = time.perf_counter()
        atomic_write_json(self.manifest_path, self.manifest)

    def end_session(self) -> None:
        """Record that the session finished, and its wall time."""
        session = self.manifest["sessions"][-1]
        session["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        session["wall_seconds"] = time.perf_counter() - self._started
        atomic_write_json(self.manifest_path, self.manifest)

    def resume_note(self, units) -> str | None:
        """What a resumed session finds done (None for a new directory)."""
        if not self.resuming:
            return None
        return (f"resuming {self.out}: {sum(u.done for u in units)} of {len(units)} steps already "
                "done")

    # -- where things live -----------------------------------------------------------------
    def reference_path(self, seed: int) -> Path:
        return self.out / "references" / f"seed-{seed}.json"

    def run_dir(self, mkey: str, lr: float, seed: int) -> Path:
        return self.out / "runs" / mkey / f"lr-{number_text(lr)}" / f"seed-{seed}"

    def final_path(self, row: str, seed: int, setting=None) -> Path:
        name = (f"lr-{number_text(setting.lr)}_epoch-{setting.epoch}_seed-{seed}.json" if setting
                else f"seed-{seed}.json")
        return self.out / "final" / row / name

    def final_done(self, row: str, seed: int, code) -> bool:
        return any(self.read_result(path, code) is not None
                   for path in (self.out / "final" / row).glob(f"*seed-{seed}.json"))

    def point_path(self, param: str, value: float, seed: int) -> Path:
        return self.out / "runs" / f"{param}-{number_text(value)}" / f"seed-{seed}.json"

    # -- reading and writing ---------------------------------------------------------------
    def read_result(self, path: Path, code) -> dict | None:
        """The result at ``path`` if it was computed by ``code`` (a
        :class:`~sftc.codeprint.CodePrint`); None when absent or stale (then noted)."""
        record = self.read_json(path)
        if record is None:
            return None
        changes = code.changes(record.get("code"))
        if changes is None:
            self.stale.pop(str(path), None)
            return record
        self.stale[str(path)] = changes
        return None

    def write_result(self, path: Path, record: dict, code) -> None:
        """Write ``record`` with the fingerprint of the ``code`` that computed it."""
        self.write_json(path, {**record, "code": code.to_dict()})

    def stale_note(self) -> str | None:
        """One line on the stored results that other code computed (None when there are none)."""
        if not self.stale:
            return None
        changed = sorted({c for changes in self.stale.values() for c in changes})
        shown = ", ".join(changed[:4]) + (f" and {len(changed) - 4} more" if len(changed) > 4
                                          else "")
        return (f"{len(self.stale)} stored result(s) in {self.out} were computed by other code "
                f"(changed: {shown}); computing them again")

    @staticmethod
    def read_json(path: Path) -> dict | None:
        """A finished result, or None when absent (or unreadable: atomic writes cannot tear a
        file, but it is never trusted blindly)."""
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    @staticmethod
    def write_json(path: Path, obj) -> None:
        atomic_write_json(path, obj)

    @staticmethod
    def save_logits(path: Path, logits: dict) -> None:
        buffer = io.BytesIO()
        torch.save(logits, buffer)
        atomic_write_bytes(path, buffer.getvalue())

    @staticmethod
    def load_logits(path: Path) -> dict:
        return torch.load(path, map_location="cpu", weights_only=True)


def describe_difference(stored: dict, current: dict) -> str:
    """``key: X there, Y now`` for every key whose value differs."""
    diffs = []
    for key in sorted(set(stored) | set(current)):
        if stored.get(key) != current.get(key):
            diffs.append(f"{key}: {json.dumps(stored.get(key))} there, "
                         f"{json.dumps(current.get(key))} now")
    return "; ".join(diffs)
