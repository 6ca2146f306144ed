"""After a ``kill -9``: finish or undo what the last command left, and say which.

Called under the deployment's lock by the commands that write (``forget``, ``recover``) before
they do anything else; ``status`` and ``verify`` only report what it would do. The rules
(:mod:`sftc.deploy.publish` lists the steps):

* a torn last ledger line (an append killed mid-write; the pointer never acknowledged it): cut;
* a ``published`` entry beyond the pointer: **resume** (finish its purge, move the pointer, then
  prune as the retention policy says), once it is checked to publish the acknowledged intent
  before it and ``versions/vN`` (:func:`sftc.deploy.entries.check_resumable`: a forged entry is
  refused, nothing removed);
* a ``pruned`` entry beyond the pointer: **resume** (finish removing what it lists, then the
  pointer catches up; :mod:`sftc.deploy.retention`);
* another entry beyond the pointer (``intent``, ``refused``, ``rolled-back``): the pointer
  catches up (nothing else was pending on it);
* an ``intent`` with no outcome after it: **resume** when ``versions/vN`` holds the whole
  candidate (``outcome.json`` is written last, the folder renamed whole), else **roll back**
  (``.work/`` removed, a ``rolled-back`` entry appended; the previous version stays published).
"""
from __future__ import annotations

import json
import shutil

from ..errors import SftcError
from . import retention
from .folder import Deployment, History
from .ledger import read_pointer
from .names import Names
from .publish import advance_pointer, publish, resume


def recover(dep: Deployment, say) -> str | None:
    """Resume or roll back an interrupted command; returns "resumed", "rolled back" or None."""
    read, pointer, beyond = dep.read()
    entries = read.entries
    if read.torn is not None:
        dep.ledger.cut_torn(read)
        say("recovered: cut a torn last ledger line (an append killed mid-write, never "
            "acknowledged by the published pointer)")
    if beyond > 1:
        raise SftcError(f"{dep.ledger.path} holds {beyond} entries beyond the published "
                        "pointer; sftc never leaves more than one: the ledger was edited")
    if beyond == 1 and entries[-1]["kind"] == "published":
        entry = resume(dep, entries, History(entries).init["data"]["dataset"])
        say(f"resumed: request {entry['payload']['request']} was recorded as published but "
            f"interrupted before the pointer moved; finished the cache purge and published "
            f"v{entry['payload']['version']}")
        _prune_after(dep, entries, say)
        return "resumed"
    if beyond == 1 and entries[-1]["kind"] == "pruned":
        retention.check_pending(entries)
        retention.finish(dep, entries, entries[-1], Names.of(History(entries).init))
        say(f"resumed: finished the prune of entry {entries[-1]['seq']} (interrupted)")
    if beyond == 1:
        pointer = advance_pointer(dep, entries, pointer)
    intent = History(entries).pending_intent()
    if intent is None:
        _sweep(dep)
        return None
    return _interrupted(dep, entries, pointer, intent, say)


def _interrupted(dep: Deployment, entries: list[dict], pointer: dict, intent: dict, say) -> str:
    payload = intent["payload"]
    version, request = payload["version"], payload["request"]
    staged = dep.version_dir(version) / "outcome.json"
    if staged.is_file():
        outcome = json.loads(staged.read_text())
        if outcome.get("request") != request or outcome.get("version") != version:
            raise SftcError(f"{staged} is not the outcome of request {request}; remove "
                            f"versions/v{version} by hand after checking it")
        publish(dep, entries, outcome, intent, History(entries).init["data"]["dataset"])
        say(f"resumed: request {request} was interrupted after its version v{version} was "
            f"complete; recorded it, purged the cache and published v{version}")
        _sweep(dep)
        _prune_after(dep, entries, say)
        return "resumed"
    _sweep(dep)
    for attempt in dep.attempts.glob(f"{intent['seq']}-*"):
        shutil.rmtree(attempt, ignore_errors=True)
    dep.ledger.append(entries, "rolled-back", {
        "request": request, "intent": intent["seq"],
        "why": "interrupted before its new version was complete"})
    advance_pointer(dep, entries, pointer)
    say(f"rolled back: request {request} was interrupted before its new version was complete; "
        f"v{pointer['version']} stays published (apply the request again)")
    return "rolled back"


def _prune_after(dep: Deployment, entries: list[dict], say) -> None:
    """A resumed publication prunes as the interrupted ``forget`` would have (the retention
    policy); without the key it is left to ``sftc deploy prune``, and said so."""
    try:
        names = Names.of(History(entries).init)
    except SftcError as exc:
        say(f"note: not pruned yet ({exc}); run 'sftc deploy prune' once the key is back")
        return
    retention.apply(dep, entries, read_pointer(dep.pointer_path), names, say)


def _sweep(dep: Deployment) -> None:
    """Remove the staging folder of a command that is no longer running."""
    if dep.work.exists():
        shutil.rmtree(dep.work, ignore_errors=True)
