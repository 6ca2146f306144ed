"""``sftc deploy verify``: the chain, the anchored head and every recorded file's SHA-256.

Read-only, so an auditor can run it on a copy. The first problem is named in one line (an
edited entry, a spliced or truncated ledger, a pointer that disagrees with the ledger, a missing
version, a model, audit or ``outcome.json`` file replaced, a version or file the ledger does not
know, an entry sftc does not write). What a ``pruned`` entry removed is not expected on disk (its
hashes stay in the ledger) and must be gone. An interrupted command's entry beyond the pointer,
or a pending intent, is not a fault: it is reported (once checked against the intent and the
version folder it names), and the next ``forget`` or ``recover`` resumes or rolls it back.
``expect_head``: a head hash kept from earlier (a re-hashed ledger with a rewritten pointer
passes every other check); the ledger must hold it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..errors import SftcError
from ..io import file_sha256
from .entries import check_resumable
from .folder import Deployment, History
from .retention import check_pending


@dataclass
class Report:
    entries: int
    head: str
    version: int
    model_sha256: str
    requests: int
    files: int
    pending: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"ledger: {self.entries} entries, chain intact; head {self.head} matches "
               "published.json",
               f"files: {self.files} checked, each matches its SHA-256 in the ledger",
               f"published: v{self.version} (versions/v{self.version}/model.pt, SHA-256 "
               f"{self.model_sha256[:16]}…) after {self.requests} request(s)"]
        return out + [f"pending: {p}" for p in self.pending]


def _check(dep: Deployment, relative: str, sha256: str, where: str) -> None:
    path = dep.root / relative
    if not path.is_file():
        folder = path.parent
        while folder != dep.root and not folder.exists():
            path, folder = folder, folder.parent
        raise SftcError(f"{dep.relative(path)} is missing ({where} records it)")
    if file_sha256(path) != sha256:
        raise SftcError(f"{relative} does not match {where}: its SHA-256 differs (the file was "
                        "replaced or changed)")


def _check_outcome(dep: Deployment, payload: dict, where: str) -> str:
    """``versions/vN/outcome.json`` against its SHA-256 in the entry (or, in entries of older
    sftc that did not record it, against the entry's content); returns its relative path."""
    relative = f"versions/v{payload['version']}/outcome.json"
    if payload.get("outcome_sha256"):
        _check(dep, relative, payload["outcome_sha256"], where)
        return relative
    path = dep.root / relative
    try:
        same = json.loads(path.read_text()) == {k: v for k, v in payload.items()
                                                  if k not in ("intent", "purge")}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        same = False
    if not same:
        raise SftcError(f"{relative} does not match {where}: its content differs (the file was "
                        "replaced or changed)")
    return relative


def _recorded_files(history: History, gone: set[str]) -> list[tuple[str, str, str]]:
    """Every file the ledger lists and still expects (``gone``: the folders a prune removed,
    whose hashes stay in the ledger), with where it is recorded."""
    init = history.init
    samples = (init["samples"]["sha256"], "entry 0 (init)")
    for entry in history.entries:
        if entry["kind"] == "pruned" and entry["payload"].get("samples"):
            samples = (entry["payload"]["samples"]["sha256"], f"entry {entry['seq']} (pruned)")
    files = [(init["samples"]["file"], *samples)]
    if "versions/v0" not in gone:
        files.append(("versions/v0/model.pt", init["model"]["sha256"], "entry 0 (init)"))
    for entry in history.entries:
        payload = entry["payload"]
        folder = {"published": f"versions/v{payload.get('version')}",
                  "refused": payload.get("attempt")}.get(entry["kind"])
        if folder in gone:
            continue
        for name, digest in (payload.get("files") or {}).items() if folder else ():
            files.append((f"{folder}/{name}", digest, f"entry {entry['seq']} "
                                                     f"({entry['kind']} request "
                                                     f"{payload['request']})"))
    return files


def _unknown(dep: Deployment, history: History, files: list, pending: set[int],
             staged: set[str]) -> None:
    """No version folder, and no file in one, that the ledger does not know (``pending``: the
    versions of an interrupted command, which recovery resumes or removes)."""
    listed = {name for name, _, _ in files}
    known = {f"v{p['version']}" for p in history.published} | {"v0"}
    waiting = {f"v{n}" for n in pending}
    for folder in sorted(dep.versions.iterdir()) if dep.versions.is_dir() else ():
        if folder.name in waiting:
            continue
        if folder.name not in known:
            raise SftcError(f"versions/{folder.name} is not recorded in the ledger")
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            name = dep.relative(path)
            if name not in listed:
                raise SftcError(f"{name} is not recorded in the ledger")
    attempts = {e["payload"].get("attempt") for e in history.entries if e["kind"] == "refused"}
    for folder in sorted(dep.attempts.iterdir()) if dep.attempts.is_dir() else ():
        if dep.relative(folder) not in attempts and folder.name.split("-")[0] not in staged:
            raise SftcError(f"attempts/{folder.name} is not recorded in the ledger")


def check_anchor(entries: list[dict], head: str) -> None:
    """The ledger holds the kept head ``head`` (a full SHA-256, or 12 or more of its first
    digits)."""
    text = (head or "").strip().lower()
    if len(text) < 12 or any(c not in "0123456789abcdef" for c in text):
        raise SftcError(f"--expect-head {head!r}: give the head hash 'deploy verify' printed (64 "
                        "hex digits, or at least its first 12)")
    if not any(str(e.get("sha256", "")).startswith(text) for e in entries):
        raise SftcError(f"the ledger holds no entry with the kept head {text[:16]}…: it was "
                        "rewritten since that head was kept (or the hash is of another "
                        "deployment)")


def _pruned_folders(entries: list[dict]) -> set[str]:
    """The folders ``pruned`` entries removed (an unacknowledged one's too: it is finished by
    the next command, so its folders may be half gone)."""
    return {item.get("path") or item.get("attempt") for e in entries if e["kind"] == "pruned"
            for item in (*e["payload"]["versions"], *e["payload"]["attempts"])}


def verify(dep: Deployment, expect_head: str | None = None) -> Report:
    """Check everything; returns what was checked (raises :class:`SftcError` at the first
    problem)."""
    dep.require()
    read, pointer, beyond = dep.read()
    if expect_head is not None:
        check_anchor(read.entries[:pointer["ledger"]["count"]], expect_head)
    acknowledged = read.entries[:pointer["ledger"]["count"]]
    history = History(acknowledged)
    if pointer["version"] != history.version or \
            pointer["model_sha256"] != history.model_sha256(history.version):
        raise SftcError(f"published.json names v{pointer['version']} (SHA-256 "
                        f"{str(pointer['model_sha256'])[:12]}…), but the ledger's last published "
                        f"version is v{history.version}: the pointer was edited")
    gone = _pruned_folders(read.entries)
    files = _recorded_files(history, gone)
    # a prune beyond the pointer may have rewritten samples.json already (it is finished next)
    rewritten = {e["payload"]["samples"]["sha256"] for e in read.entries[len(acknowledged):]
                 if e["kind"] == "pruned" and e["payload"].get("samples")}
    for relative, digest, where in files:
        if relative == "samples.json" and rewritten and file_sha256(dep.root / relative) in \
                rewritten:
            continue
        _check(dep, relative, digest, where)
    for entry in history.entries:
        if entry["kind"] == "published" and \
                f"versions/v{entry['payload']['version']}" not in gone:
            name = _check_outcome(dep, entry["payload"], f"entry {entry['seq']} (published "
                                                         f"request {entry['payload']['request']})")
            files.append((name, None, None))
    pending, versions, staged = [], set(), set()
    if read.torn is not None:
        pending.append("a torn last ledger line (an append killed mid-write)")
    if beyond:
        extra = read.entries[-1]
        pending.append(f"entry {extra['seq']} ({extra['kind']}) lies beyond the published "
                       "pointer (an interrupted command); the next 'deploy forget' or 'deploy "
                       "recover' finishes it")
        if extra["kind"] == "published":
            check_resumable(dep, read.entries)
            versions.add(extra["payload"]["version"])
        staged.add(str(extra["payload"].get("intent")))
        if extra["kind"] == "pruned":
            check_pending(read.entries)
    intent = History(read.entries).pending_intent()
    if intent is not None:
        pending.append(f"request {intent['payload']['request']} was being applied (an "
                       "interrupted or running 'deploy forget'); the next 'deploy forget' or "
                       "'deploy recover' resumes or rolls it back")
        versions.add(intent["payload"]["version"])
        staged.add(str(intent["seq"]))
    _unknown(dep, history, files, versions | {int(g[len("versions/v"):]) for g in gone
                                              if g.startswith("versions/")}, staged)
    for folder in sorted(_pruned_folders(acknowledged)):
        if (dep.root / folder).exists():
            raise SftcError(f"{folder} was pruned (the ledger says so) but is still there: "
                            "run 'sftc deploy prune --dir DIR' to finish")
    return Report(pointer["ledger"]["count"], pointer["ledger"]["head"], history.version,
                  pointer["model_sha256"], len(history.published), len(files), pending)
