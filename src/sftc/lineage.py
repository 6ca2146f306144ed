"""Where a model comes from, from the run.json records beside the checkpoints.

Every model sftc writes has a run.json beside it; ``sftc unlearn`` records there its *parent*:
the input checkpoint's SHA-256 and, when a run.json sat beside that one, the parent's kind and
the parent's own chain (:func:`parent_entry`). From these records :func:`check_lineage` decides,
for ``sftc audit`` and ``sftc evaluate``, whether

* ``--original`` is an original: trained by ``sftc train`` on the training set (not unlearned,
  not an oracle trained without a forget set), and
* ``--unlearned`` descends from it: the SHA-256 of ``--original`` is its recorded parent's, or
  that of an ancestor reached through a chain of unlearning runs.

Missing records make notes ("lineage: not verified (no run.json beside X)"); records that
contradict the roles are a one-line :class:`SftcError` naming both files; models of different
architectures are never compared. Data in (paths, SHA-256 digests, records, architecture
names), result out: no file is read here.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import SftcError

#: What a checkpoint is, judged from the run.json beside it.
ORIGINAL, ORACLE, UNLEARNED, UNKNOWN = "original", "oracle", "unlearned", "unknown"
MADE_BY = ("method", "epochs", "lr", "batch_size", "optimizer", "scheduler", "seed")


@dataclass
class Checkpoint:
    """One compared checkpoint: its flag, path, SHA-256, run.json (or None), architecture."""

    flag: str
    path: str
    sha256: str
    record: dict | None
    architecture: str | None = None

    @property
    def named(self) -> str:
        return f"{self.flag} {self.path}"


def kind_of(record: dict | None) -> str:
    """original (sftc train on the training set), oracle (sftc train --subset retain),
    unlearned (sftc unlearn), or unknown (no record, or one that records no lineage)."""
    if not record:
        return UNKNOWN
    command = record.get("command")
    if command == "train":
        return ORACLE if (record.get("trained_on") or {}).get("subset") == "retain" else ORIGINAL
    return UNLEARNED if command == "unlearn" else UNKNOWN


def parent_entry(path: str, sha256: str, record: dict | None) -> dict:
    """What ``sftc unlearn`` records of its input checkpoint: path, SHA-256, kind, the method
    that made it (when unlearned) and its own ancestors (``chain``, nearest first)."""
    entry = {"path": str(path), "sha256": sha256, "kind": kind_of(record),
             "run_json": record is not None}
    if entry["kind"] == UNLEARNED:
        entry["method"] = (record.get("config") or {}).get("method")
    parent = (record or {}).get("parent")
    entry["chain"] = ([_link(parent)] + list(parent.get("chain") or [])) if parent else []
    return entry


def _link(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if k != "chain"}


def _short(sha: str | None) -> str:
    return f"SHA-256 {sha[:12]}…" if sha else "an unknown SHA-256"


def check_architectures(models: list[Checkpoint]) -> None:
    """Compared models must share one architecture (the names recorded beside them)."""
    known = [m for m in models if m.architecture]
    for other in known[1:]:
        if other.architecture != known[0].architecture:
            raise SftcError(f"{other.named} is a {other.architecture} and {known[0].named} a "
                            f"{known[0].architecture}: models of different architectures cannot "
                            "be compared; give models of one architecture (an unlearned model "
                            "made from --original by 'sftc unlearn', an oracle trained with its "
                            "--model)")


def check_record_matches(model: Checkpoint) -> None:
    """The run.json beside a checkpoint must describe that file, when it records its digest."""
    recorded = (model.record or {}).get("model_sha256")
    if recorded and recorded != model.sha256:
        raise SftcError(f"the run.json beside {model.named} records a model with "
                        f"{_short(recorded)}, but {model.path} has {_short(model.sha256)}: the "
                        "model file was replaced after its run; put back the model that run "
                        "wrote, or remove the run.json")


def _original_kind(original: Checkpoint, notes: list[str]) -> bool:
    """Whether --original is verified as an original; raises when its record says otherwise."""
    kind = kind_of(original.record)
    if kind == ORIGINAL:
        return True
    if kind == ORACLE:
        raise SftcError(f"{original.named} is a retrain oracle (trained by 'sftc train --subset "
                        "retain' without its forget set, says the run.json beside it), not an "
                        "original trained on the whole training set; pass the original as "
                        "--original (and the oracle as --retrained)")
    if kind == UNLEARNED:
        parent = parent_entry(original.path, original.sha256, original.record)
        chain = parent["chain"]
        root = next((e for e in reversed(chain) if e.get("kind") == ORIGINAL), None)
        fix = (f"pass the original it descends from, {root['path']} ({_short(root['sha256'])}), "
               "as --original" if root else "pass the original it was unlearned from as --original")
        source = f" from {chain[0]['path']}" if chain else ""
        raise SftcError(f"{original.named} was made by 'sftc unlearn'{source} (says the run.json "
                        f"beside it), so it is not an original; {fix}")
    why = (f"no run.json beside {original.path}" if original.record is None else
           f"the run.json beside {original.path} was written by 'sftc "
           f"{original.record.get('command')}', which records no lineage")
    notes.append(f"lineage: not verified ({why})")
    return False


def _descent(original: Checkpoint, unlearned: Checkpoint, notes: list[str]) -> tuple[str, list]:
    """How --unlearned relates to --original: (relation, its parent chain)."""
    if unlearned.sha256 == original.sha256:
        notes.append(f"{unlearned.named} is {original.named} itself (the same SHA-256): "
                     "compared as the do-nothing baseline")
        return "same-model", []
    kind = kind_of(unlearned.record)
    if unlearned.record is None:
        notes.append(f"lineage: not verified (no run.json beside {unlearned.path})")
        return "not-verified", []
    if kind == ORIGINAL:
        raise SftcError(f"{unlearned.named} was trained from scratch on the whole training set "
                        "('sftc train', says the run.json beside it), not unlearned from "
                        f"{original.named}; give the model that 'sftc unlearn --checkpoint "
                        f"{original.path}' wrote")
    if kind == ORACLE:
        notes.append(f"{unlearned.named} is a retrain oracle (trained without the forget set, "
                     f"says the run.json beside it), not unlearned from {original.named}: "
                     "compared as a control; lineage: not applicable")
        return "oracle", []
    if kind == UNKNOWN:
        notes.append(f"lineage: not verified (the run.json beside {unlearned.path} was written by "
                     f"'sftc {unlearned.record.get('command')}', which records no lineage)")
        return "not-verified", []
    parent = unlearned.record.get("parent")
    if not parent:
        notes.append(f"lineage: not verified (the run.json beside {unlearned.path} records no "
                     "parent: written by an older sftc)")
        return "not-verified", []
    chain = [_link(parent)] + list(parent.get("chain") or [])
    if original.sha256 in [entry.get("sha256") for entry in chain]:
        return "descends", chain
    last = chain[-1]
    if last.get("kind") in (ORIGINAL, ORACLE):
        raise SftcError(f"{unlearned.named} descends from {last.get('path')} "
                        f"({_short(last.get('sha256'))}, says the run.json beside it), not from "
                        f"{original.named} ({_short(original.sha256)}); compare it with the "
                        "original it was unlearned from")
    notes.append(f"lineage: not verified ({unlearned.path} descends from {last.get('path')} "
                 f"({_short(last.get('sha256'))}), which had no run.json with a parent when it "
                 "was unlearned)")
    return "not-verified", chain


def made_by(record: dict | None) -> dict | None:
    """How a model was made, from its run.json: the command and its recipe."""
    if not record:
        return None
    config = record.get("config") or {}
    return {"command": record.get("command"), "created": record.get("created"),
            **{key: config[key] for key in MADE_BY if key in config}}


def check_lineage(original: Checkpoint, unlearned: Checkpoint,
                  retrained: Checkpoint | None = None) -> dict:
    """The lineage of a compared pair (module docstring): raises :class:`SftcError` on a
    contradiction, else ``{"verified", "original", "unlearned", "unlearned_parent_chain",
    "notes"}`` (and ``"retrained"`` when given)."""
    models = [m for m in (original, unlearned, retrained) if m is not None]
    check_architectures(models)
    for model in models:
        check_record_matches(model)
    notes: list[str] = []
    original_ok = _original_kind(original, notes)
    relation, chain = _descent(original, unlearned, notes)
    result = {
        "verified": original_ok and relation in ("descends", "same-model"),
        "original": _describe(original),
        "unlearned": {**_describe(unlearned), "relation": relation,
                      "made_by": made_by(unlearned.record)},
        "unlearned_parent_chain": chain, "notes": notes}
    if retrained is not None:
        result["retrained"] = _describe(retrained)
    return result


def _describe(model: Checkpoint) -> dict:
    return {"path": model.path, "sha256": model.sha256, "kind": kind_of(model.record),
            "architecture": model.architecture, "run_json": model.record is not None}
