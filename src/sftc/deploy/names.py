"""Pseudonyms: the ledger names requests and samples by a keyed hash, never by their plain ids.

A request id (``user07``) and a sample id (an image's path, which often names a person) are
stored in the ledger, the audit files and the folder names as ``req-`` or ``smp-`` and the first
20 hex digits of HMAC-SHA-256 under the deployment's key. The key is a file the operator keeps
outside the deployment (``deploy init --key-file``, default ``DIR.key`` beside the folder); the
ledger records its path and a check value (an HMAC of a fixed text, which tells a wrong key from
the right one), never the key. Without the key a pseudonym cannot be tied back to a person.

The mapping back (pseudonym -> plain id, for the messages and for ``deploy report --id``) is kept
beside the key, ``KEY.ids.json``, by the operator too: deleting it (or the key) leaves only
pseudonyms. A deployment made before pseudonyms existed has no key: its names stay plain.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
from pathlib import Path

from ..errors import SftcError
from ..io import atomic_write_json

CHECK_TEXT = b"sftc-deploy key check"
PSEUDONYM = re.compile(r"(?<![\w/-])(?:req|smp)-[0-9a-f]{20}\b")


def default_key_file(root: Path) -> Path:
    return Path(root).with_name(Path(root).name + ".key")


def read_key(path: Path) -> bytes:
    try:
        text = Path(path).read_text().strip()
        key = bytes.fromhex(text)
    except FileNotFoundError:
        raise SftcError(f"the deployment's key file {path} is missing: the ledger names requests "
                        "and samples by keyed hashes; restore the key from the operator's backup"
                        ) from None
    except (OSError, UnicodeDecodeError, ValueError):
        raise SftcError(f"{path} is not an sftc key file (64 hex digits); give another "
                        "--key-file, or delete it to have a new one made") from None
    if len(key) != 32:
        raise SftcError(f"{path} is not an sftc key file (64 hex digits); give another "
                        "--key-file, or delete it to have a new one made")
    return key


def check_value(key: bytes) -> str:
    return hmac.new(key, CHECK_TEXT, hashlib.sha256).hexdigest()[:16]


class Names:
    """Plain ids to their ledger names and back (identity when the deployment has no key)."""

    def __init__(self, key: bytes | None = None, mapping: Path | None = None):
        self.key, self.mapping_path = key, mapping
        self.known: dict[str, str] = {}
        if mapping is not None and Path(mapping).is_file():
            try:
                self.known = dict(json.loads(Path(mapping).read_text()))
            except (OSError, ValueError, TypeError):
                raise SftcError(f"{mapping} is not the key's id mapping (JSON); restore it or "
                                "delete it (the ledger keeps the pseudonyms)") from None

    @classmethod
    def of(cls, init: dict) -> "Names":
        """The names of a deployment, from its init entry (its key read and checked)."""
        recorded = init.get("pseudonyms")
        if not recorded:
            return cls()
        path = Path(recorded["key_file"])
        key = read_key(path)
        if check_value(key) != recorded["check"]:
            raise SftcError(f"{path} is not this deployment's key (its check value differs from "
                            "the one recorded at init); restore the right key file")
        return cls(key, mapping_file(path))

    @classmethod
    def of_ledger(cls, entries: list[dict]) -> "Names":
        """The names from a ledger's first entry as read, before its chain is checked (so that
        a message about a broken ledger can name requests plainly too)."""
        init = entries[0].get("payload") if entries else None
        return cls.of(init) if isinstance(init, dict) else cls()

    def _name(self, prefix: str, plain: str) -> str:
        if self.key is None:
            return plain
        return f"{prefix}-" + hmac.new(self.key, f"{prefix}:{plain}".encode(),
                                       hashlib.sha256).hexdigest()[:20]

    def request(self, plain: str) -> str:
        return self._name("req", plain)

    def sample(self, plain: str) -> str:
        return self._name("smp", plain)

    def of_sample(self, record: dict) -> str:
        """The ledger name of a sample of samples.json (pruned ones hold it already)."""
        return record["id"] if record.get("pseudonymised") else self.sample(record["id"])

    def remember(self, plains: dict[str, str]) -> None:
        """Add ``{pseudonym: plain}`` to the operator's mapping (written atomically)."""
        new = {k: v for k, v in plains.items() if k != v and self.known.get(k) != v}
        if not new or self.mapping_path is None:
            return
        self.known.update(new)
        atomic_write_json(self.mapping_path, dict(sorted(self.known.items())))

    def plain(self, name: str) -> str:
        return self.known.get(name, name)

    def reveal(self, text: str) -> str:
        """``text`` with every pseudonym the mapping knows replaced by its plain id."""
        return PSEUDONYM.sub(lambda m: self.known.get(m.group(0), m.group(0)), text)


def mapping_file(key_file: Path) -> Path:
    return Path(key_file).with_name(Path(key_file).name + ".ids.json")


def revealing(say, names: Names):
    """``say`` with the pseudonyms the operator's mapping knows shown as their plain ids."""
    return say if names.key is None else (lambda text: say(names.reveal(text)))
