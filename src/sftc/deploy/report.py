"""``sftc deploy report --id ID --out DIR``: one request's record as a page a data-protection
officer can read (:mod:`sftc.report.request_page` renders it).

Read-only on the deployment: the record is verified first (a report is never written for a
deployment whose ledger or files do not match), then the request's entries are gathered: what
was asked and when, how it was applied and under which policy, its audit and its latest
re-audit, the attempts that were refused, the cost, and the hashes that tie the page to the
ledger. ``--out`` is a new folder, written whole or not at all.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import SftcError
from ..io import atomic_write_bytes, atomic_write_text, output_directory
from .folder import Deployment, History
from .names import Names
from .verify import verify


def _find(history: History, rid: str, plain: str, names: Names) -> dict:
    """The request's entries: its intents, its outcomes and its published payload."""
    mine = [e for e in history.entries if (e.get("payload") or {}).get("request") == rid]
    if not mine:
        known = sorted({names.plain(e["payload"]["request"]) for e in history.entries
                        if e["kind"] == "intent"})
        listed = ", ".join(known[:10]) + (" …" if len(known) > 10 else "") or "none yet"
        raise SftcError(f"request {plain} is not in the ledger of this deployment (requests "
                        f"on record: {listed}); give the --id it was applied with")
    published = next((e for e in mine if e["kind"] == "published"), None)
    intents = [e for e in mine if e["kind"] == "intent"]
    applied = next((e for e in intents if published and e["seq"] ==
                    published["payload"]["intent"]), intents[-1])
    return {"entries": mine, "published": published,
            "refused": [e for e in mine if e["kind"] == "refused"],
            "rolled_back": [e for e in mine if e["kind"] == "rolled-back"],
            "first_intent": intents[0], "intent": applied}


def _pruned(history: History) -> list[dict]:
    return [{"seq": e["seq"], "time": e["time"], "keep": e["payload"]["keep"],
             "versions": [v["version"] for v in e["payload"]["versions"]],
             "attempts": len(e["payload"]["attempts"])}
            for e in history.entries if e["kind"] == "pruned"]


def gather(root, request_id: str) -> dict:
    """Everything the page says about one request, from the verified record."""
    dep = Deployment(root).require()
    report = verify(dep)
    read, pointer, _ = dep.read()
    history = History(read.entries[:pointer["ledger"]["count"]])
    init = history.init
    names = Names.of(init)
    rid = names.request(request_id)
    found = _find(history, rid, request_id, names)
    published = found["published"]
    payload = published["payload"] if published else None
    last = history.last_audit(rid) if payload else None
    return {
        "request": request_id, "ledger_name": rid, "deployment": str(dep.root),
        "dataset": init["data"]["dataset"], "model": init["model"]["name"],
        "keep": (init.get("retention") or {}).get("keep", "all (recorded before --keep)"),
        "pseudonymised": names.key is not None,
        "intent": found["intent"], "first_intent": found["first_intent"],
        "plain": names.plain, "published": published, "payload": payload,
        "refused": found["refused"], "rolled_back": found["rolled_back"],
        "last_audit": last, "later_versions": [p["version"] for p in history.published
                                               if payload and p["version"] > payload["version"]],
        "pruned": _pruned(history),
        "head": {"sha256": pointer["ledger"]["head"], "count": pointer["ledger"]["count"],
                 "version": pointer["version"], "model_sha256": pointer["model_sha256"]},
        "verified": report.lines()[:2],
    }


def write_report(root, request_id: str, out) -> list[Path]:
    """Write ``report.html`` (self-contained), ``report.md`` and ``verdict.png`` into the new
    folder ``out``; returns their paths."""
    from ..report.request_page import render

    dep = Deployment(root)
    target = Path(out).expanduser().resolve()
    if target == dep.root.resolve() or dep.root.resolve() in target.parents:
        raise SftcError(f"--out {out} lies inside the deployment {dep.root}; the report is "
                        "read-only on it: choose a folder outside")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise SftcError(f"--out {out} already holds files; a report is written into a new "
                        "folder: choose another")
    facts = gather(root, request_id)
    pages = render(facts)
    with output_directory(out, inputs=(dep.root,), what="--out") as tmp:
        atomic_write_text(tmp / "report.html", pages["html"])
        atomic_write_text(tmp / "report.md", pages["markdown"])
        atomic_write_bytes(tmp / "verdict.png", pages["png"])
    final = Path(out).expanduser().resolve()
    return [final / "report.html", final / "report.md", final / "verdict.png"]
