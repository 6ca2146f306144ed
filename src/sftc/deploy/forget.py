"""``sftc deploy forget`` and ``sftc deploy recover``: one request applied under the deployment's
lock, from the write-ahead intent to the published pointer (:mod:`sftc.deploy.publish` lists
the steps and what a ``kill -9`` between them leaves).

A second command on the same deployment while one runs is refused in one line (it does not
wait: a request takes minutes, and the operator should know). Before anything else the command
resumes or rolls back what an interrupted one left (:mod:`sftc.deploy.recovery`) and checks the
whole record (:mod:`sftc.deploy.verify`): a deployment whose ledger or files do not match is
refused.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import replace

from ..errors import SftcError
from ..io import file_sha256
from .apply import ForgetOptions, apply_request, training_sets
from .audits import check_policy, line
from . import retention
from .folder import Deployment, History, fault_point
from .ledger import read_pointer
from .names import Names, revealing
from .publish import advance_pointer, publish
from .recovery import recover
from .samples import Samples, check_layout, read_request
from .verify import verify

#: Exit status of a request that was applied but not published (an audit missed the policy).
NOT_PUBLISHED = 3
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_request_id(request_id: str, history: History) -> None:
    if not REQUEST_ID.fullmatch(request_id or ""):
        raise SftcError(f"--id {request_id!r}: a request id is 1-64 letters, digits, '.', '_' "
                        "or '-' (it names the request's audit file)")
    done = history.request(request_id)
    if done is not None:
        raise SftcError(f"request {request_id} was published already (v{done['version']}); give "
                        "a new request its own --id")


def _loader(dep: Deployment, model_name: str):
    from .. import api

    def load_version(n: int, split):
        path = dep.version_dir(n) / "model.pt"
        return api.load_model(path, model_name, split), path
    return load_version


def data_config(recorded: dict, data_dir: str | None) -> dict:
    """The data options recorded at init, at another folder when the data moved (what it holds
    is checked against the record's hashes all the same)."""
    if data_dir is None:
        return recorded
    config = {**recorded, "data_dir": os.path.abspath(data_dir)}
    if config["dataset"] == "imagefolder":
        check_layout(config)
    return config


def _prepare(dep: Deployment, request_file, options: ForgetOptions, names: Names, say):
    """The checked record, the data mapped onto it and the request's sample ids."""
    check_policy(options.require)
    verify(dep)
    read, pointer, _ = dep.read()
    history = History(read.entries)
    check_request_id(options.request_id, history)
    say(f"[1/4] loading {history.init['data']['dataset']} and mapping it onto the deployment's "
        "record")
    record = json.loads(dep.samples_path.read_text())
    samples = Samples.load(data_config(history.init["data"], options.data_dir), record)
    samples.names = names
    renamed = {s["id"] for s in record["train"] if s.get("pseudonymised")}
    request = read_request(request_file, record, lambda i: names.sample(i) in renamed)
    names.remember({names.sample(i): i for i in request})
    removed = history.removed_ids()
    for sample in request:
        if names.sample(sample) in removed:
            earlier = next(p["request"] for p in history.published
                           if names.sample(sample) in {s["id"] for s in p["removed"]})
            raise SftcError(f"{sample} was removed already by request {earlier}; leave it out "
                            "of this request")
    if len(request) < 2:
        raise SftcError(f"request {options.request_id} names 1 sample; its audit needs at least "
                        "2 to give an interval: apply it together with another request")
    _, retain = training_sets(history, samples, request, options.request_id)  # before the intent
    if len(retain) < 2:
        raise SftcError(f"request {options.request_id} names {len(request)} of the "
                        f"{len(retain) + len(request)} samples still in the model: nothing would "
                        "be left to retain or to retrain its references on; a request for "
                        "(almost) the whole training set is a new model, not unlearning")
    _check_bounds(options, samples, request)
    return read.entries, pointer, history, samples, request


def _check_bounds(options: ForgetOptions, samples: Samples, request: list[str]) -> None:
    """--references and --trials against this machine's memory (:mod:`sftc.limits`), as every
    command bounds them, before the intent is written."""
    from ..bench.reference_pool import check_reference_count
    from ..limits import check_references, check_trials

    pool = len(request) + len(samples.test) + len(samples.val)
    check_references(check_reference_count(options.references), pool,
                     samples.data.num_classes)
    if not options.fixed:
        check_trials(options.trials, options.max_epochs)


def forget(root, request_file, options: ForgetOptions, say=print) -> int:
    """Apply one request; 0 when the new version is published, :data:`NOT_PUBLISHED` when an
    audit misses the policy (the current version stays published)."""
    dep = Deployment(root).require()
    names = Names.of_ledger(dep.ledger.read().entries)
    try:
        return _forget(dep, request_file, options, names, revealing(say, names))
    except SftcError as exc:       # the operator reads plain ids; the ledger keeps pseudonyms
        raise type(exc)(names.reveal(str(exc))) from None


def _forget(dep: Deployment, request_file, options: ForgetOptions, names: Names, say) -> int:
    started = time.perf_counter()
    with dep.lock():
        recover(dep, say)
        if not REQUEST_ID.fullmatch(options.request_id or ""):
            check_request_id(options.request_id, History([]))
        names.remember({names.request(options.request_id): options.request_id})
        options = replace(options, request_id=names.request(options.request_id))
        entries, pointer, history, samples, request = _prepare(dep, request_file, options,
                                                               names, say)
        version = history.version + 1
        intent = dep.ledger.append(entries, "intent", {
            "request": options.request_id, "version": version,
            "parent": {"version": version - 1, "sha256": history.model_sha256(version - 1)},
            "removed": [{"id": names.sample(i), "sha256": samples.sha256[i]} for i in request],
            "request_file_sha256": file_sha256(request_file), "method": options.method,
            "require": options.require})
        pointer = advance_pointer(dep, entries, pointer)
        fault_point("after-intent")
        shutil.rmtree(dep.work, ignore_errors=True)
        staging = dep.work / f"v{version}"
        try:
            outcome = apply_request(history=history, samples=samples, request=request,
                                    options=options, staging=staging,
                                    load_version=_loader(dep, history.init["model"]["name"]),
                                    say=say)
        except BaseException as exc:      # an error, Ctrl-C, SIGTERM: undo, record, re-raise
            _abandon(dep, entries, pointer, intent, exc)
            raise
        if outcome["failed"]:
            return _refuse(dep, entries, pointer, intent, outcome, staging, say)
        say(f"[4/4] publishing v{version} and purging the cache of the removed samples")
        dep.versions.mkdir(exist_ok=True)
        staging.rename(dep.version_dir(version))
        shutil.rmtree(dep.work, ignore_errors=True)
        fault_point("after-rename")
        entry = publish(dep, entries, outcome, intent, history.init["data"]["dataset"])
        retention.apply(dep, entries, read_pointer(dep.pointer_path), names, say)
    _report(entry["payload"], time.perf_counter() - started, say)
    return 0


def _abandon(dep, entries, pointer, intent, exc: BaseException) -> None:
    """A request that failed half-way: its staging folder removed, a ``rolled-back`` entry."""
    shutil.rmtree(dep.work, ignore_errors=True)
    text = next((t.strip() for t in str(exc).splitlines() if t.strip()), "")
    why = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    dep.ledger.append(entries, "rolled-back", {"request": intent["payload"]["request"],
                                               "intent": intent["seq"],
                                               "why": f"stopped by an error: {why}"})
    advance_pointer(dep, entries, pointer)


def _refuse(dep, entries, pointer, intent, outcome, staging, say) -> int:
    """Keep the current version; keep the attempt's audits (not its model); record why."""
    attempt = dep.attempts / f"{intent['seq']}-{outcome['request']}"
    (staging / "model.pt").unlink(missing_ok=True)
    (staging / "outcome.json").unlink(missing_ok=True)
    dep.attempts.mkdir(exist_ok=True)
    staging.rename(attempt)
    shutil.rmtree(dep.work, ignore_errors=True)
    files = {p.relative_to(attempt).as_posix(): file_sha256(p)
             for p in sorted(attempt.rglob("*")) if p.is_file()}
    keep = ("request", "version", "parent", "removed", "retain", "method", "hparams", "chosen",
            "policy", "evidence", "audits", "failed", "references", "timings", "options",
            "versions", "machine")
    dep.ledger.append(entries, "refused", {**{k: outcome[k] for k in keep},
                                           "cost": outcome.get("cost"),
                                           "intent": intent["seq"],
                                           "attempt": dep.relative(attempt), "files": files})
    advance_pointer(dep, entries, pointer)
    first = outcome["failed"][0]
    say(f"request {outcome['request']} not published: request {first['request']} is "
        f"{first['why']}; v{pointer['version']} stays published (audits kept in "
        f"{dep.relative(attempt)}/)")
    text = cost_text(outcome.get("cost"), outcome.get("method"))
    if text:
        say(text)
    return NOT_PUBLISHED


def _report(payload: dict, seconds: float, say) -> None:
    refs = payload["references"]
    say(f"published v{payload['version']} (versions/v{payload['version']}/model.pt, SHA-256 "
        f"{payload['child']['sha256'][:16]}…) for request {payload['request']}: "
        f"{len(payload['removed'])} samples removed, retain set {payload['retain']['size']}")
    for audit in payload["audits"]:
        say(f"  {audit['request']}: {line(audit)}")
    why = (" (a new request needs its own: the previous pool trained on its samples)"
           if refs["trained_now"] else "")
    say(f"references: {refs['trained_now']} trained now in {refs['train_seconds']:.1f} s, "
        f"{refs['from_cache']} from the cache, on the {refs['train_size']}-sample cumulative "
        f"retain set{why}")
    say(f"times: {times_text(payload, seconds)}; cache: {len(payload['purge'])} item(s) purged "
        "(listed in the ledger)")
    text = cost_text(payload.get("cost"), payload.get("method"))
    if text:
        say(text)


def cost_text(cost: dict | None, method: str | None = None) -> str | None:
    """A request's cost against one retraining, and the offer when retraining was cheaper (not
    made when the method was retraining)."""
    if not cost or not cost.get("retrainings"):
        return None
    text = (f"cost: {cost['total_seconds']:.1f} s in all, references and every audit included "
            f"= {cost['retrainings']:.1f} retrainings (one ≈ {cost['one_retraining_seconds']:.1f}"
            " s, the references' median)")
    if cost["retraining_cheaper"] and method != "retrain":
        text += ("; retraining from scratch would have been cheaper: 'sftc deploy forget "
                 "--method retrain --epochs N' retrains on the same retain set")
    return text


def times_text(payload: dict, seconds: float) -> str:
    """Where a request's time went. The references train inside the search (``--until``) or
    inside the request's audit (a fixed setting); they are counted on their own."""
    refs, t = payload["references"]["train_seconds"], payload["timings"]
    if payload["chosen"]["how"].startswith("until"):
        work = (f"the search and its audit of the request {t['unlearn_seconds'] - refs:.1f} s, "
                f"re-audits {t['audits_seconds']:.1f} s")
    else:
        work = (f"unlearning {t['unlearn_seconds']:.1f} s, audits "
                f"{t['audits_seconds'] - refs:.1f} s")
    return f"references {refs:.1f} s, {work}, whole command {seconds:.1f} s"


def recover_now(root, say=print) -> str | None:
    """``sftc deploy recover``: resume or roll back what an interrupted command left, under the
    lock (what ``forget`` does first), then check the record; returns what was done."""
    dep = Deployment(root).require()
    try:
        say = revealing(say, Names.of_ledger(dep.ledger.read().entries))
    except SftcError as exc:
        say(f"note: {exc}; requests are shown by pseudonym")
    with dep.lock():
        done = recover(dep, say)
        verify(dep)
    if done is None:
        say(f"deployment {dep.root}: nothing was interrupted; nothing to do")
    return done


def prune(root, say=print) -> dict | None:
    """``sftc deploy prune``: what the recorded policy removes now, under the lock, after the
    record is checked; returns the ``pruned`` entry (None when nothing is due)."""
    dep = Deployment(root).require()
    with dep.lock():
        recover(dep, say)
        verify(dep)
        read, pointer, _ = dep.read()
        history = History(read.entries)
        entry = retention.apply(dep, read.entries, pointer, Names.of(history.init), say)
    if entry is None:
        say(f"nothing to prune under --keep {history.init.get('retention', {}).get('keep', 'all')}"
            f" (v{history.version} published)")
    return entry
