"""``sftc deploy status``: where a deployment stands, as a report that never writes.

It checks the record first (:func:`sftc.deploy.verify.verify`: a file changed by hand is named
in one line, not printed as if it matched), then lists the published version and, per request,
when it was published, by which method and policy, and its last audit. What an interrupted
command left is reported, not acted on: ``sftc deploy recover`` (or the next ``forget``) resumes
or rolls it back.
"""
from __future__ import annotations

from ..errors import SftcError
from .audits import line
from .folder import Deployment, History
from .names import Names, revealing
from .verify import verify


def _remembered(audit: dict | None) -> bool:
    """The audit tells the samples apart, above: beyond the band's refute line (the margin
    rule's entries: the interval wholly above the level's margin)."""
    if not audit or not audit.get("interval"):
        return False
    if "band" in audit:
        return audit.get("verdict") == "not-forgotten" and audit.get("direction") == "remembered"
    return audit.get("margin") is not None and \
        audit["interval"]["low"] > audit["interval"]["level"] + audit["margin"]


def _request(history: History, entries: list[dict], payload: dict) -> dict:
    entry = next(e for e in entries if e["kind"] == "published" and e["payload"] is payload)
    version, audit = history.last_audit(payload["request"]) or (None, None)
    above = _remembered(audit)
    return {"request": payload["request"], "version": payload["version"],
            "published": entry.get("time"), "samples": len(payload["removed"]),
            "method": payload.get("method"),
            "require": (payload.get("policy") or {}).get("require"),
            "how": str((payload.get("chosen") or {}).get("how", "")).split(":")[0],
            "last_audit": None if audit is None else {
                "version": version, "verdict": audit.get("verdict"), "line": line(audit),
                "interval": audit.get("interval"),
                "band": audit.get("band", audit.get("margin")), "wholly_above_level": above}}


def status(root, say=print) -> dict:
    """Check the deployment and say where it stands (plain ids where the operator's mapping
    knows them); returns the same as a dict (``--json``), which keeps the ledger's pseudonyms
    and says so in ``ids``."""
    dep = Deployment(root).require()
    report = verify(dep)
    try:
        names = Names.of_ledger(dep.ledger.read().entries)
        say = revealing(say, names)
    except SftcError as exc:
        names = None
        say(f"note: {exc}; requests are shown by pseudonym")
    read, pointer, _ = dep.read()
    acknowledged = read.entries[:pointer["ledger"]["count"]]
    history = History(acknowledged)
    init = history.init
    requests = [_request(history, acknowledged, p) for p in history.published]
    refused = []
    for entry in acknowledged:
        if entry["kind"] in ("refused", "rolled-back"):
            payload = entry["payload"]
            why = payload.get("why") if entry["kind"] == "rolled-back" else \
                f"request {payload['failed'][0]['request']} is {payload['failed'][0]['why']}"
            refused.append({"entry": entry["seq"], "request": payload.get("request"),
                            "kind": entry["kind"], "time": entry.get("time"), "why": why})
    out = {"deployment": str(dep.root), "dataset": init["data"]["dataset"],
           "model": init["model"]["name"], "training_samples": init["samples"]["train"],
           "published": {"version": pointer["version"], "model": pointer["model"],
                         "sha256": pointer["model_sha256"]},
           "ledger": {"count": pointer["ledger"]["count"], "head": pointer["ledger"]["head"]},
           "ids": _ids(init, names), "requests": requests, "refused": refused,
           "pending": report.pending}
    _say(out, say)
    return out


def _ids(init: dict, names: Names | None) -> str:
    """How the report names requests and samples: the dict (``--json``) keeps the ledger's
    names, pseudonyms where the deployment has a key; the printed lines show plain ids."""
    if not init.get("pseudonyms"):
        return "plain: this deployment predates pseudonyms; its ledger names requests plainly"
    where = "" if names is None or names.mapping_path is None else \
        f" (the operator's mapping {names.mapping_path} ties them to plain ids)"
    return ("pseudonyms: requests and samples are named as in the ledger, by keyed hash "
            f"(req-…, smp-…){where}; 'sftc deploy status' without --json prints the plain ids")


def _say(out: dict, say) -> None:
    say(f"deployment {out['deployment']}: {out['dataset']}, {out['model']}, "
        f"{out['training_samples']} training samples recorded")
    p, ledger = out["published"], out["ledger"]
    say(f"published: v{p['version']} ({p['model']}, SHA-256 {p['sha256'][:16]}…); ledger "
        f"{ledger['count']} entries, head {ledger['head'][:16]}…")
    for r in out["requests"]:
        last = r["last_audit"]
        flag = " [beyond the retrain band's refute line, above: the model still tells these " \
               "samples apart]" if last and last["wholly_above_level"] else ""
        audit = f"last audit on v{last['version']}: {last['line']}" if last else "no audit"
        say(f"  v{r['version']} {r['request']} ({r['published']}, {r['method']}, "
            f"--require {r['require']}): {r['samples']} samples; {audit}{flag}")
    for r in out["refused"]:
        say(f"  entry {r['entry']}: request {r['request']} {r['kind']}: {r['why']}")
    for text in out["pending"]:
        say(f"pending: {text.split('; the next')[0]}; 'sftc deploy recover --dir "
            f"{out['deployment']}' (or the next 'deploy forget') finishes it")
