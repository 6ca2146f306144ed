"""``sftc deploy``: five requests in a row on own PNGs and on digits, each retain set excluding
every earlier request, every published version's audits meeting the policy, deleted files
breaking nothing, a cache purged of the removed samples, a record whose tampering ``verify``
names, and ``kill -9`` at three points of ``forget`` leaving a consistent state."""
from __future__ import annotations

import hashlib
import json
import re
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import sftc
from sftc.bench.members import cached_members, sample_digests
from sftc.cli import main
from sftc.deploy.folder import KILL_AT
from sftc.deploy.names import Names
from sftc.errors import SftcError

FAST = ["--references", "4", "--no-paper-metrics", "--quiet", "--device", "cpu"]
FIXED = ["--epochs", "1", "--lr", "1e-3"]
USERS = 5


def write_pngs(root: Path, seed: int = 0) -> dict:
    """4 classes of 8x8 grayscale PNGs: train/ has 12 images per class and one per class for each
    of 5 users (``uK-cC.png``), val/ and test/ 8 per class. Returns each file's bytes."""
    rng = np.random.default_rng(seed)
    files = {}
    for part, n in (("train", 12 + USERS), ("val", 8), ("test", 8)):
        for c in range(4):
            folder = root / part / f"c{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(n):
                pixels = np.clip(40 + 50 * c + rng.integers(-40, 40, (8, 8)), 0, 255)
                name = f"u{k}-c{c}.png" if part == "train" and k < USERS else f"x{k:02d}.png"
                Image.fromarray(pixels.astype(np.uint8), "L").save(folder / name)
                files[f"{part}/c{c}/{name}"] = (folder / name).read_bytes()
    return files


def run(*argv, capsys=None) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr() if capsys is not None else None
    return code, (out.out + out.err) if out else ""


def ledger(deploy: Path) -> list[dict]:
    return [json.loads(line) for line in (deploy / "ledger.jsonl").read_text().splitlines()]


def published(deploy: Path) -> list[dict]:
    return [e["payload"] for e in ledger(deploy) if e["kind"] == "published"]


def cache_holds_nothing_of(cache: Path, removed: set[str]) -> None:
    """No cached model trained on, and no cached logits file holds outputs of, a removed sample
    (and every entry and logits file says what it holds)."""
    prefixes = {d[:16] for d in removed}
    for entry in (cache / "models").iterdir():
        if entry.name.startswith("."):
            continue
        members = cached_members(entry)
        assert members["model"] is not None, entry
        assert not prefixes & set(members["model"]), f"{entry} trained on a removed sample"
        for name, queried in members["logits"].items():
            assert queried is not None, entry / name
            assert not prefixes & set(queried), f"{entry / name} holds outputs of removed samples"


class RetainSpy:
    """Records the content of every retain set an unlearning run receives."""

    def __init__(self, monkeypatch):
        self.retains = []
        real = sftc.api.unlearn

        def spy(model, split, *args, **kwargs):
            self.retains.append(set(sample_digests(split.data, split.retain)))
            return real(model, split, *args, **kwargs)
        monkeypatch.setattr(sftc.api, "unlearn", spy)


# -- own PNGs ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_five_requests_on_own_pngs_with_their_files_deleted(tmp_path, capsys, monkeypatch):
    pngs, deploy, cache = tmp_path / "pngs", tmp_path / "deploy", tmp_path / "cache"
    files = write_pngs(pngs)
    assert run("train", "--dataset", "imagefolder", "--data-dir", pngs, "--epochs", "3",
               "--quiet", "--device", "cpu", "--out", tmp_path / "orig")[0] == 0
    checkpoint = tmp_path / "orig" / "model.pt"
    before = checkpoint.read_bytes()
    code, out = run("deploy", "init", "--dir", deploy, "--dataset", "imagefolder", "--data-dir",
                    pngs, "--checkpoint", checkpoint, "--ref-epochs", "2", "--cache-dir", cache,
                    "--keep", "all", capsys=capsys)
    assert code == 0 and "68 training samples recorded" in out, out
    loaded = sftc.load_dataset("imagefolder", pngs)
    digest = dict(zip(loaded.train_names, sample_digests(loaded.data, loaded.train)))
    users = [[f"c{c}/u{u}-c{c}.png" for c in range(4)] for u in range(USERS)]
    spy = RetainSpy(monkeypatch)
    forget = ["deploy", "forget", "--dir", deploy, *FIXED, *FAST]

    # the first attempt under the default policy: at 4 samples the attack cannot tell the
    # original from retrained models (nothing detectable), which --require forgotten refuses
    (tmp_path / "r0.txt").write_text("\n".join(f"train/{p}" for p in users[0]) + "\n")
    code, out = run(*forget, "--request", tmp_path / "r0.txt", "--id", "user0", capsys=capsys)
    assert code == 3, out
    assert "request user0 not published: request user0 is nothing-detectable under --require " \
           "forgotten" in out and "v0 stays published" in out
    assert json.loads((deploy / "published.json").read_text())["version"] == 0
    removed = set()
    for u in range(USERS):
        request = tmp_path / f"r{u}.txt"
        request.write_text("\n".join(users[u]) + "\n")
        code, out = run(*forget, "--require", "not-refuted", "--request", request, "--id",
                        f"user{u}", capsys=capsys)
        assert code == 0, out
        asked = {digest[p] for p in users[u]}
        assert not (removed | asked) & spy.retains[-1]           # retain excludes every request
        assert len(spy.retains[-1]) == 68 - 4 * (u + 1)
        removed |= asked
        cache_holds_nothing_of(cache, removed)
        if u != 3:                                                 # user3's files stay a while
            for p in users[u]:
                (pngs / "train" / p).unlink()
    assert re.search(r"request user3 \(re-audit on v5\): (not-proven|nothing-detectable)", out)
    assert "request user0: not re-audited (4 of its 4 files are gone)" in out
    entries = published(deploy)
    assert [p["version"] for p in entries] == [1, 2, 3, 4, 5]
    assert "retrainings (one ≈" in out
    for payload in entries:       # every audit of a published version meets its policy
        assert payload["policy"]["require"] == "not-refuted" and not payload["failed"]
        cost = payload["cost"]      # the whole request against one retraining, in the ledger
        assert cost["retrainings"] == pytest.approx(cost["total_seconds"]
                                                    / cost["one_retraining_seconds"])
        assert cost["retraining_cheaper"] == (cost["retrainings"] > 1)
        assert all(a["meets_policy"] for a in payload["audits"] if a["reaudited"])
        assert payload["retain"]["excludes"][-1] == payload["request"]
    assert [a["reaudited"] for a in entries[-1]["audits"]] == [True, False, False, False, True]
    assert checkpoint.read_bytes() == before                      # the user's file untouched

    # no copy of a removed image anywhere: its file's bytes, its decoded pixels
    gone = [files[f"train/{p}"] for u in (0, 1, 2, 4) for p in users[u]]
    pixels = [loaded.data.images[loaded.train[loaded.train_names.index(p)]].numpy().tobytes()
              for u in (0, 1, 2, 4) for p in users[u]]
    for path in [*deploy.rglob("*"), *cache.rglob("*")]:
        if path.is_file():
            content = path.read_bytes()
            assert not any(g in content for g in gone + pixels), path

    # bad requests: a removed sample, a recorded file deleted outside any request
    code, out = run(*forget, "--request", tmp_path / "r0.txt", "--id", "again", capsys=capsys)
    assert code == 2 and "c0/u0-c0.png was removed already by request user0" in out
    (pngs / "train" / "c1" / "x07.png").unlink()
    (tmp_path / "r9.txt").write_text("".join(f"c{c}/x08.png\n" for c in range(4)))
    code, out = run(*forget, "--request", tmp_path / "r9.txt", "--id", "user9", capsys=capsys)
    assert code == 2 and "1 training samples are missing from the data (first: c1/x07.png) " \
                         "though no request removed them" in out, out
    (pngs / "train" / "c1" / "x07.png").write_bytes(files["train/c1/x07.png"])
    pngs.rename(tmp_path / "moved")                              # the data moved: --data-dir
    code, out = run(*forget, "--request", tmp_path / "r9.txt", "--id", "user9", "--require",
                    "not-refuted", capsys=capsys)
    assert code == 2 and "pngs does not exist" in out
    code, out = run(*forget, "--request", tmp_path / "r9.txt", "--id", "user9", "--require",
                    "not-refuted", "--data-dir", tmp_path / "moved", capsys=capsys)
    assert code == 0 and "published v6" in out, out
    assert run("deploy", "verify", "--dir", deploy)[0] == 0


def test_init_refuses_what_would_break_later_requests(tmp_path, capsys):
    flat = tmp_path / "flat"
    for c in range(2):
        (flat / f"c{c}").mkdir(parents=True)
        for k in range(3):
            Image.fromarray(np.full((8, 8), 60 * c + k, np.uint8), "L").save(
                flat / f"c{c}" / f"{k}.png")
    (tmp_path / "m.pt").write_bytes(b"")
    code, out = run("deploy", "init", "--dir", tmp_path / "d", "--dataset", "imagefolder",
                    "--data-dir", flat, "--checkpoint", tmp_path / "m.pt", capsys=capsys)
    assert code == 2 and "has no train/ folder" in out
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    code, out = run("deploy", "init", "--dir", tmp_path / "full", "--checkpoint",
                    tmp_path / "m.pt", capsys=capsys)
    assert code == 2 and "already holds files; a deployment is never overwritten" in out
    (flat / "train").mkdir()
    code, out = run("deploy", "init", "--dir", flat / "train" / "d", "--dataset", "imagefolder",
                    "--data-dir", flat, "--checkpoint", tmp_path / "m.pt", capsys=capsys)
    assert code == 2 and "lies inside --data-dir" in out


# -- digits: five requests, each re-auditing every earlier one ---------------------------------

SUBSETS = ["--train-subset", "120", "--test-subset", "80", "--val-subset", "40"]


@pytest.fixture(scope="module")
def digits_deployment(tmp_path_factory):
    """A digits deployment after five published requests of 5 samples (the first found by
    --until forgotten), with what each printed."""
    root = tmp_path_factory.mktemp("digits")
    deploy, cache = root / "deploy", root / "cache"
    assert main(["train", "--dataset", "digits", *SUBSETS, "--epochs", "3", "--quiet",
                 "--device", "cpu", "--out", str(root / "orig")]) == 0
    assert main(["deploy", "init", "--dir", str(deploy), "--checkpoint",
                 str(root / "orig" / "model.pt"), "--ref-epochs", "2", "--cache-dir",
                 str(cache), "--keep", "all"]) == 0
    ids = [s["id"] for s in json.loads((deploy / "samples.json").read_text())["train"]]
    requests = [ids[7 * u:7 * u + 5] for u in range(USERS)]
    codes = []
    for u, request in enumerate(requests):
        path = root / f"r{u}.txt"
        path.write_text("\n".join(request) + "\n")
        setting = ["--trials", "1", "--max-epochs", "1", "--lrs", "1e-3"] if u == 0 else FIXED
        codes.append(main(["deploy", "forget", "--dir", str(deploy), "--request", str(path),
                           "--id", f"p{u}", "--require", "not-refuted", *setting, *FAST]))
    return {"root": root, "deploy": deploy, "cache": cache, "requests": requests,
            "codes": codes}


@pytest.mark.slow
def test_five_requests_on_digits_each_reaudit_every_earlier_one(digits_deployment, capsys):
    d = digits_deployment
    assert d["codes"] == [0] * USERS
    entries = published(d["deploy"])
    loaded = sftc.load_dataset("digits")
    def digest(ids):
        return set(sample_digests(loaded.data, loaded.train[[int(i) for i in ids]]))
    names = Names.of(ledger(d["deploy"])[0]["payload"])        # the ledger holds pseudonyms
    for n, payload in enumerate(entries):
        assert [names.plain(a["request"]) for a in payload["audits"]] == [
            f"p{n}", *(f"p{k}" for k in range(n))]
        assert all(a["reaudited"] and a["meets_policy"] for a in payload["audits"])
        assert payload["retain"]["size"] == 120 - 5 * (n + 1)
        assert {s["sha256"] for s in payload["removed"]} == digest(d["requests"][n])
        assert payload["parent"]["sha256"] == (entries[n - 1]["child"]["sha256"] if n else
                                               ledger(d["deploy"])[0]["payload"]["model"]
                                               ["sha256"])
        assert payload["references"]["trained_now"] == 4   # each request: its own references
        assert payload["purge"]                             # the previous pool, its logits
    assert entries[0]["chosen"]["how"].startswith("until forgotten")
    assert entries[0]["chosen"]["checks"] >= 1 and entries[1]["chosen"]["how"].startswith("fixed")
    removed = set().union(*(digest(r) for r in d["requests"]))
    cache_holds_nothing_of(d["cache"], removed)
    code, out = run("deploy", "status", "--dir", d["deploy"], capsys=capsys)
    assert code == 0 and "published: v5" in out and out.count("last audit on v5") == USERS
    code, out = run("deploy", "verify", "--dir", d["deploy"], capsys=capsys)
    assert code == 0 and "chain intact" in out and "published: v5" in out


def _tampered(d, tmp_path, name):
    copy = tmp_path / name
    shutil.copytree(d["deploy"], copy)
    return copy


@pytest.mark.parametrize("tamper, message", [
    ("edit", "entry 4 (published request p1) was edited: its SHA-256 does not match"),
    ("swap", "versions/v2/model.pt does not match entry"),
    ("truncate", "holds 10 entries but the published pointer acknowledges 11"),
    ("missing", "versions/v4 is missing (entry"),
    ("pointer", "published.json names v4"),
])
@pytest.mark.slow
def test_verify_names_the_first_thing_that_does_not_match(digits_deployment, tmp_path, capsys,
                                                           tamper, message):
    deploy = _tampered(digits_deployment, tmp_path, tamper)
    lines = (deploy / "ledger.jsonl").read_text().splitlines(keepends=True)
    if tamper == "edit":
        entry = json.loads(lines[4])
        entry["payload"]["retain"]["size"] += 1
        lines[4] = json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n"
        (deploy / "ledger.jsonl").write_text("".join(lines))
    elif tamper == "swap":
        shutil.copyfile(deploy / "versions" / "v0" / "model.pt",
                        deploy / "versions" / "v2" / "model.pt")
    elif tamper == "truncate":
        (deploy / "ledger.jsonl").write_text("".join(lines[:-1]))
    elif tamper == "missing":
        shutil.rmtree(deploy / "versions" / "v4")
    else:
        pointer = json.loads((deploy / "published.json").read_text())
        pointer["version"] = 4
        (deploy / "published.json").write_text(json.dumps(pointer))
    code, out = run("deploy", "verify", "--dir", deploy, capsys=capsys)
    assert code == 2 and message in out and len(out.strip().splitlines()) == 1, out
    code, out = run("deploy", "forget", "--dir", deploy, "--request",
                    digits_deployment["root"] / "r0.txt", "--id", "x", *FIXED, *FAST,
                    capsys=capsys)
    assert code == 2 and message in out                    # and forget refuses it


# -- faults ------------------------------------------------------------------------------------

def _killed_at(point: str, argv: list[str]) -> None:
    """``argv`` run in a forked child that SIGKILLs itself at ``point``."""
    pid = os.fork()
    if pid == 0:                                       # the child: never returns to pytest
        code = 1
        try:
            os.environ[KILL_AT] = point
            code = main(argv)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status


@pytest.mark.slow
def test_kill_9_at_three_points_leaves_a_consistent_state(digits_deployment, tmp_path, capsys):
    root = digits_deployment["root"]
    deploy, cache = tmp_path / "deploy", tmp_path / "cache"
    assert main(["deploy", "init", "--dir", str(deploy), "--checkpoint",
                 str(root / "orig" / "model.pt"), "--ref-epochs", "2", "--cache-dir",
                 str(cache)]) == 0
    forget = ["deploy", "forget", "--dir", str(deploy), "--require", "not-refuted", *FIXED,
              *FAST]
    first = [*forget, "--request", str(root / "r0.txt"), "--id", "p0"]
    capsys.readouterr()

    _killed_at("after-intent", first)             # before any work: rolled back
    assert ledger(deploy)[-1]["kind"] == "intent"
    code, out = run("deploy", "verify", "--dir", deploy, capsys=capsys)
    assert code == 0 and "request p0 was being applied" in out
    code, out = run("deploy", "recover", "--dir", deploy, capsys=capsys)
    assert "rolled back: request p0 was interrupted" in out and "v0 stays published" in out
    assert not (deploy / ".work").exists() and not (deploy / "versions" / "v1").exists()

    _killed_at("after-rename", first)             # the new version whole, not recorded: resumed
    assert (deploy / "versions" / "v1" / "outcome.json").is_file()
    assert json.loads((deploy / "published.json").read_text())["version"] == 0
    code, out = run("deploy", "status", "--dir", deploy, capsys=capsys)   # a report: no change
    assert "pending: request p0 was being applied" in out and "published: v0" in out
    code, out = run("deploy", "recover", "--dir", deploy, capsys=capsys)
    assert "resumed: request p0 was interrupted after its version v1 was complete" in out
    assert "published: v1" in run("deploy", "status", "--dir", deploy, capsys=capsys)[1]

    _killed_at("after-entry", [*forget, "--request", str(root / "r1.txt"), "--id", "p1"])
    assert ledger(deploy)[-1]["kind"] == "published"               # recorded, not yet pointed
    assert json.loads((deploy / "published.json").read_text())["version"] == 1
    code, out = run("deploy", "verify", "--dir", deploy, capsys=capsys)
    assert code == 0 and "lies beyond the published pointer" in out and "published: v1" in out
    code, out = run("deploy", "recover", "--dir", deploy, capsys=capsys)
    assert "resumed: request p1 was recorded as published" in out and "published v2" in out
    assert [e["kind"] for e in ledger(deploy)] == ["init", "intent", "rolled-back", "intent",
                                                  "published", "pruned", "intent",
                                                  "published", "pruned"]   # --keep published
    assert run("deploy", "verify", "--dir", deploy)[0] == 0
    removed = {s["sha256"] for p in published(deploy) for s in p["removed"]}
    cache_holds_nothing_of(cache, removed)


@pytest.mark.slow
def test_a_torn_last_line_is_reported_then_cut(digits_deployment, tmp_path, capsys):
    deploy = _tampered(digits_deployment, tmp_path, "torn")
    with open(deploy / "ledger.jsonl", "a") as fh:
        fh.write('{"kind":"intent","payload":{"requ')          # an append killed mid-write
    code, out = run("deploy", "verify", "--dir", deploy, capsys=capsys)
    assert code == 0 and "pending: a torn last ledger line" in out
    code, out = run("deploy", "recover", "--dir", deploy, capsys=capsys)
    assert "recovered: cut a torn last ledger line" in out
    assert (deploy / "ledger.jsonl").read_text().endswith("}\n")
    code, out = run("deploy", "verify", "--dir", deploy, capsys=capsys)
    assert code == 0 and "pending" not in out


@pytest.mark.slow
def test_an_error_during_a_request_rolls_it_back_at_once(digits_deployment, tmp_path, capsys,
                                                         monkeypatch):
    import sftc.deploy.apply as apply

    deploy = _tampered(digits_deployment, tmp_path, "error")
    unused = json.loads((deploy / "samples.json").read_text())["train"][5:7]
    (tmp_path / "r.txt").write_text("".join(f"{s['id']}\n" for s in unused))

    def fail(*args, **kwargs):
        raise SftcError("the disk is full")
    monkeypatch.setattr(apply, "unlearn", fail)
    code, out = run("deploy", "forget", "--dir", deploy, "--request", tmp_path / "r.txt", "--id",
                    "e1", *FIXED, *FAST, capsys=capsys)
    assert code == 2 and "the disk is full" in out
    last = ledger(deploy)[-1]
    assert last["kind"] == "rolled-back" and "the disk is full" in last["payload"]["why"]
    assert not (deploy / ".work").exists() and not (deploy / "versions" / "v6").exists()
    assert run("deploy", "verify", "--dir", deploy)[0] == 0


@pytest.mark.slow
def test_a_second_forget_is_refused_in_one_line(digits_deployment, capsys):
    from sftc.io import run_lock

    d = digits_deployment
    with run_lock(d["deploy"], what="deployment"):
        code, out = run("deploy", "forget", "--dir", d["deploy"], "--request",
                        d["root"] / "r0.txt", "--id", "x", *FIXED, *FAST, capsys=capsys)
    assert code == 2 and len(out.strip().splitlines()) == 1
    assert f"is writing deployment {d['deploy']}; wait for it to finish" in out


# -- the cache records its members and the purge removes exactly what it must ------------------

def test_the_purge_removes_exactly_what_trained_on_or_holds_outputs_of_removed(tmp_path,
                                                                               tiny_split):
    from sftc.bench.cache import ModelCache, TrainSpec
    from sftc.deploy import purge

    cache = ModelCache(tmp_path)
    recipe = sftc.TrainingRecipe("small-cnn", epochs=1, batch_size=32)
    split = tiny_split
    with_forget = cache.get(TrainSpec(recipe, "train", 1), split, device="cpu")
    without = cache.get(TrainSpec(recipe, "retain", 1), split, device="cpu")
    on_forget = torch.cat([split.forget[:3], split.test[:5]])
    cache.logits(without, split, on_forget, "cpu")
    cache.logits(without, split, split.test, "cpu")
    removed = set(sample_digests(split.data, split.forget[:1]))
    members = cached_members(without.path)
    assert members["model"] == [d[:16] for d in sample_digests(split.data, split.retain)]
    assert sorted(len(m) for m in members["logits"].values()) == [8, len(split.test)]
    legacy = tmp_path / "models" / "tensors-small-cnn-0000legacy"
    legacy.mkdir()
    (legacy / "meta.json").write_text(json.dumps({"inputs": {"dataset": "tensors"}}))
    other = tmp_path / "models" / "digits-small-cnn-0000other"
    other.mkdir()
    (other / "meta.json").write_text(json.dumps({"inputs": {"dataset": "digits"}}))
    items = purge.plan(tmp_path, removed, "tensors")
    tag = hashlib.sha256(on_forget.numpy().astype("<i8").tobytes()).hexdigest()[:16]
    assert {(i["entry"], i["file"]) for i in items} == {
        (with_forget.path.name, None), (without.path.name, f"logits-{tag}.pt"),
        (legacy.name, None)}
    assert purge.execute(tmp_path, items) == 3 and purge.execute(tmp_path, items) == 0
    left = cached_members(without.path)
    assert list(left["logits"].values()) == [[d[:16] for d in sample_digests(split.data,
                                                                              split.test)]]
    assert not with_forget.path.exists() and not legacy.exists() and other.exists()
    assert not list(without.path.glob(f"logits-{tag}*"))


@pytest.mark.slow
def test_bad_requests_are_one_line(digits_deployment, tmp_path, capsys):
    d = digits_deployment
    forget = ["deploy", "forget", "--dir", d["deploy"], *FIXED, *FAST]
    (tmp_path / "bad.txt").write_text("99999\n")
    code, out = run(*forget, "--request", tmp_path / "bad.txt", "--id", "x", capsys=capsys)
    assert code == 2 and "99999 is not a sample of the deployment's training set" in out
    code, out = run(*forget, "--request", d["root"] / "r0.txt", "--id", "p3", capsys=capsys)
    assert code == 2 and "request p3 was published already (v4)" in out
    code, out = run(*forget, "--request", d["root"] / "r0.txt", "--id", "bad id",
                    capsys=capsys)
    assert code == 2 and "a request id is 1-64 letters" in out
    unused = json.loads((d["deploy"] / "samples.json").read_text())["train"][5]["id"]
    (tmp_path / "one.txt").write_text(f"{unused}\n# one sample\n")
    code, out = run(*forget, "--request", tmp_path / "one.txt", "--id", "z", capsys=capsys)
    assert code == 2 and "request z names 1 sample; its audit needs at least 2" in out
    code, out = run(*forget, "--until", "forgotten", "--request", d["root"] / "r0.txt", "--id",
                    "y", capsys=capsys)
    assert code == 2 and "drop --epochs/--lr for it, or drop --until" in out
    with pytest.raises(SftcError, match="--require must be one of"):
        from sftc.deploy.audits import check_policy
        check_policy("maybe")
