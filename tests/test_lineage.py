"""sftc.lineage on records as sftc writes them (no files, no models): what verifies, what is a
note, what is refused."""
from __future__ import annotations

import pytest

from sftc.errors import SftcError
from sftc.lineage import Checkpoint, check_lineage, kind_of, parent_entry


def trained(sha: str, subset: str = "train", model: str = "small-cnn") -> dict:
    return {"command": "train", "model_sha256": sha, "config": {"model": model},
            "trained_on": {"subset": subset}}


def unlearned(sha: str, parent_path: str, parent_sha: str, parent_record: dict | None) -> dict:
    return {"command": "unlearn", "model_sha256": sha,
            "config": {"model": "small-cnn", "method": "sftc", "epochs": 3, "lr": 5e-4},
            "parent": parent_entry(parent_path, parent_sha, parent_record)}


def ck(flag, name, record, arch="small-cnn"):
    return Checkpoint(flag, f"{name}/model.pt", f"{name}-sha", record, arch)


ORIG = trained("orig-sha")
U1 = unlearned("u1-sha", "orig/model.pt", "orig-sha", ORIG)
U2 = unlearned("u2-sha", "u1/model.pt", "u1-sha", U1)


def test_kinds_and_the_recorded_parent_chain():
    assert [kind_of(r) for r in (ORIG, trained("x", "retain"), U1, None, {"command": "demo"})] \
        == ["original", "oracle", "unlearned", "unknown", "unknown"]
    assert U2["parent"]["kind"] == "unlearned" and U2["parent"]["method"] == "sftc"
    assert [(e["path"], e["sha256"], e["kind"]) for e in U2["parent"]["chain"]] == [
        ("orig/model.pt", "orig-sha", "original")]
    assert parent_entry("bare.pt", "b-sha", None) == {
        "path": "bare.pt", "sha256": "b-sha", "kind": "unknown", "run_json": False, "chain": []}


@pytest.mark.parametrize("record, depth", [(U1, 1), (U2, 2)])
def test_an_unlearned_model_descending_from_the_original_verifies(record, depth):
    name = "u1" if record is U1 else "u2"
    result = check_lineage(ck("--original", "orig", ORIG), ck("--unlearned", name, record))
    assert result["verified"] is True and result["notes"] == []
    assert result["unlearned"]["relation"] == "descends"
    assert len(result["unlearned_parent_chain"]) == depth
    assert result["unlearned_parent_chain"][-1]["sha256"] == "orig-sha"
    assert result["unlearned"]["made_by"] == {"command": "unlearn", "created": None,
                                              "method": "sftc", "epochs": 3, "lr": 5e-4}


def test_the_original_itself_is_the_do_nothing_baseline():
    orig = ck("--original", "orig", ORIG)
    result = check_lineage(orig, Checkpoint("--unlearned", "orig/model.pt", "orig-sha", ORIG,
                                            "small-cnn"))
    assert result["verified"] is True and result["unlearned"]["relation"] == "same-model"
    assert "do-nothing baseline" in result["notes"][0]


@pytest.mark.parametrize("original, unlearned_, message", [
    (trained("orig-sha", "retain"), U1, "--original orig/model.pt is a retrain oracle"),
    ({**U1, "model_sha256": None}, {**U2, "model_sha256": None},
     "--original orig/model.pt was made by 'sftc unlearn' from orig/model.pt"),
    (ORIG, unlearned("u1-sha", "other/model.pt", "other-sha", trained("other-sha")),
     "--unlearned u1/model.pt descends from other/model.pt (SHA-256 other-sha…"),
    (ORIG, trained("u1-sha"), "--unlearned u1/model.pt was trained from scratch"),
    (ORIG, {**U1, "model_sha256": "another"}, "the model file was replaced after its run"),
])
def test_records_that_contradict_the_roles_are_refused(original, unlearned_, message):
    with pytest.raises(SftcError, match=message.replace("(", r"\(").replace("…", ".")):
        check_lineage(ck("--original", "orig", original), ck("--unlearned", "u1", unlearned_))


def test_models_of_different_architectures_are_refused():
    with pytest.raises(SftcError, match="--unlearned u1/model.pt is a resnet18 and --original "
                                        "orig/model.pt a small-cnn"):
        check_lineage(ck("--original", "orig", ORIG), ck("--unlearned", "u1", U1, "resnet18"))
    with pytest.raises(SftcError, match="--retrained rt/model.pt is a resnet18"):
        check_lineage(ck("--original", "orig", ORIG), ck("--unlearned", "u1", U1),
                      ck("--retrained", "rt", trained("rt-sha", "retain"), "resnet18"))


@pytest.mark.parametrize("original, unlearned_, note", [
    (None, U1, "lineage: not verified (no run.json beside orig/model.pt)"),
    (ORIG, None, "lineage: not verified (no run.json beside u1/model.pt)"),
    (ORIG, {k: v for k, v in U1.items() if k != "parent"}, "records no parent"),
    (ORIG, unlearned("u1-sha", "mid/model.pt", "mid-sha", None), "which had no run.json"),
    (ORIG, trained("u1-sha", "retain"), "compared as a control; lineage: not applicable"),
    ({"command": "demo"}, U1, "written by 'sftc demo', which records no lineage"),
])
def test_missing_records_are_notes_and_never_verified(original, unlearned_, note):
    result = check_lineage(ck("--original", "orig", original), ck("--unlearned", "u1", unlearned_))
    assert result["verified"] is False
    assert any(note in text for text in result["notes"]), result["notes"]
