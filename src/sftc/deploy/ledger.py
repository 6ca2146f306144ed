"""The deployment's ledger: an append-only, hash-chained list of entries, and the published
pointer that anchors its head.

``ledger.jsonl`` holds one entry per line, each the canonical JSON (sorted keys, no spaces,
UTF-8) of ``{seq, kind, time, payload, prev, sha256}``: ``prev`` is the SHA-256 of the entry
before (64 zeros for the first), ``sha256`` that of the entry's canonical JSON without itself.
Editing any entry breaks its own hash; removing or reordering entries breaks the next one's
``prev``. Removing entries *from the end* breaks nothing in the chain, so the head is anchored
outside it: ``published.json`` (written atomically after every append) records the head entry's
hash and the entry count, with the published version. A ledger shorter than the pointer says, or
whose entry at the pointer's count has another hash, is truncated or rewritten.

An append is one ``write`` of one line, then ``fsync``. A process killed mid-write can leave a
torn last line; it lies beyond the pointer's count (the pointer is updated after the append), so
it was never acknowledged, and recovery cuts it off.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import SftcError
from ..io import atomic_write_json, to_jsonable

FORMAT = "sftc-deploy/1"
GENESIS = "0" * 64
FIELDS = ("seq", "kind", "time", "payload", "prev")


def canonical(obj) -> str:
    """The one JSON text of ``obj`` that is hashed: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(to_jsonable(obj), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False)


def entry_sha256(entry: dict) -> str:
    """The SHA-256 of an entry's canonical JSON, its own ``sha256`` field left out."""
    return hashlib.sha256(canonical({k: entry.get(k) for k in FIELDS}).encode()).hexdigest()


def make_entry(seq: int, kind: str, payload: dict, prev: str) -> dict:
    entry = {"seq": seq, "kind": kind, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
             "payload": json.loads(canonical(payload)), "prev": prev}
    entry["sha256"] = entry_sha256(entry)
    return entry


def describe(entry: dict) -> str:
    """``entry 3 (published request user07)``: how messages name an entry."""
    payload = entry.get("payload") if isinstance(entry.get("payload"), dict) else {}
    request = f" request {payload['request']}" if payload.get("request") else ""
    return f"entry {entry.get('seq')} ({entry.get('kind')}{request})"


@dataclass
class Read:
    """The ledger as read: complete entries (parsed, not yet checked) and a torn last line."""

    entries: list[dict]
    torn: str | None = None


class Ledger:
    """``ledger.jsonl`` of one deployment."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def read(self) -> Read:
        """Every complete line parsed; a last line without its newline is returned as torn."""
        try:
            text = self.path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            raise SftcError(f"{self.path} is missing: the deployment's ledger is gone; restore "
                            "it from a backup (every claim of the deployment rests on it)"
                            ) from None
        except UnicodeDecodeError:
            raise SftcError(f"{self.path} is not UTF-8 text: the ledger was overwritten") from None
        lines = text.split("\n")
        torn = lines.pop() or None        # "" after a final newline
        entries = []
        for number, line in enumerate(lines, 1):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                raise SftcError(f"{self.path} line {number} is not a ledger entry (not JSON): "
                                "the ledger was edited") from None
            if not isinstance(entry, dict):
                raise SftcError(f"{self.path} line {number} is not a ledger entry: the ledger "
                                "was edited")
            entries.append(entry)
        return Read(entries, torn)

    def append(self, entries: list[dict], kind: str, payload: dict) -> dict:
        """Append an entry after ``entries`` (the checked ledger) and return it."""
        prev = entries[-1]["sha256"] if entries else GENESIS
        entry = make_entry(len(entries), kind, payload, prev)
        line = (canonical(entry) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        entries.append(entry)
        return entry

    def cut_torn(self, read: Read) -> None:
        """Remove a torn last line (an append killed mid-write, never acknowledged)."""
        if read.torn is None:
            return
        size = self.path.stat().st_size
        with open(self.path, "r+b") as fh:
            fh.truncate(size - len(read.torn.encode("utf-8")))
            fh.flush()
            os.fsync(fh.fileno())
        read.torn = None


def check_chain(entries: list[dict], where: Path) -> None:
    """Every entry's hash and link, in order; the first that does not match is named."""
    prev = GENESIS
    for i, entry in enumerate(entries):
        name = describe(entry)
        if entry.get("seq") != i:
            raise SftcError(f"{where}: line {i + 1} holds {name}, not entry {i}: entries were "
                            "removed, added or reordered")
        if entry.get("sha256") != entry_sha256(entry):
            raise SftcError(f"{where}: {name} was edited: its SHA-256 does not match its content")
        if entry.get("prev") != prev:
            raise SftcError(f"{where}: {name} does not follow entry {i - 1} (its prev is not "
                            "that entry's SHA-256): the ledger was spliced")
        prev = entry["sha256"]


# -- the published pointer ----------------------------------------------------------------------

def pointer_record(entries: list[dict], version: int, model: str, model_sha256: str) -> dict:
    return {"format": FORMAT, "version": version, "model": model, "model_sha256": model_sha256,
            "ledger": {"count": len(entries), "head": entries[-1]["sha256"]},
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def write_pointer(path: Path, entries: list[dict], version: int, model: str,
                  model_sha256: str) -> dict:
    record = pointer_record(entries, version, model, model_sha256)
    atomic_write_json(path, record)
    return record


def read_pointer(path: Path) -> dict:
    try:
        record = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SftcError(f"{path} is missing: the published pointer anchors the ledger's head; "
                        "restore it from a backup") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise SftcError(f"{path} is not readable JSON: the published pointer was "
                        "overwritten") from None
    ledger = record.get("ledger") if isinstance(record, dict) else None
    if not isinstance(ledger, dict) or record.get("format") != FORMAT \
            or not isinstance(ledger.get("count"), int) \
            or not isinstance(record.get("version"), int):
        raise SftcError(f"{path} is not a published pointer of format {FORMAT}")
    return record


def check_head(entries: list[dict], pointer: dict, where: Path) -> int:
    """The ledger holds at least the entries the pointer acknowledges, ending in its head;
    returns how many entries lie beyond it (an interrupted command's, for recovery)."""
    count, head = pointer["ledger"]["count"], pointer["ledger"].get("head")
    if len(entries) < count:
        raise SftcError(f"{where} holds {len(entries)} entries but the published pointer "
                        f"acknowledges {count} (head {str(head)[:12]}…): the ledger was "
                        "truncated")
    if count < 1 or entries[count - 1].get("sha256") != head:
        raise SftcError(f"{where}: entry {count - 1} is not the head the published pointer "
                        f"records ({str(head)[:12]}…): the ledger was rewritten")
    return len(entries) - count
