"""``sftc deploy`` against what a reliability campaign tried: the same deployment through aliases
(a symbolic link, ``a/../a``, another path to the same folder), forged ledger entries of several
shapes (beyond the pointer and acknowledged), ``status`` as a report that never writes, every
file of a version hashed, a kept head, and what is refused before a request's intent."""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from sftc.cli import main
from sftc.deploy.ledger import canonical, make_entry

FAST = ["--references", "4", "--no-paper-metrics", "--quiet", "--device", "cpu"]
FIXED = ["--epochs", "1", "--lr", "1e-3"]
SUBSETS = ["--train-subset", "60", "--test-subset", "40", "--val-subset", "32"]


def run(*argv, capsys) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out + out.err


def entries(deploy: Path) -> list[dict]:
    return [json.loads(line) for line in (deploy / "ledger.jsonl").read_text().splitlines()]


def snapshot(root: Path) -> dict:
    """Every path under ``root`` (and beside it) with its bytes' SHA-256 and its mtime."""
    found = {}
    for path in sorted(root.parent.rglob("*")):
        if path.is_file():
            found[str(path)] = (hashlib.sha256(path.read_bytes()).hexdigest(),
                                path.stat().st_mtime_ns)
        else:
            found[str(path)] = None
    return found


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A digits deployment after one published request (p0), and a request file for another."""
    root = tmp_path_factory.mktemp("safety")
    assert main(["train", "--dataset", "digits", *SUBSETS, "--epochs", "2", "--quiet",
                 "--device", "cpu", "--out", str(root / "orig")]) == 0
    deploy = root / "deploy"
    assert main(["deploy", "init", "--dir", str(deploy), "--checkpoint",
                 str(root / "orig" / "model.pt"), "--ref-epochs", "1", "--cache-dir",
                 str(root / "cache")]) == 0
    ids = [s["id"] for s in json.loads((deploy / "samples.json").read_text())["train"]]
    (root / "r0.txt").write_text("\n".join(ids[:4]) + "\n")
    (root / "r1.txt").write_text("\n".join(ids[4:8]) + "\n")
    assert main(["deploy", "forget", "--dir", str(deploy), "--request", str(root / "r0.txt"),
                 "--id", "p0", "--require", "not-refuted", *FIXED, *FAST]) == 0
    return root


@pytest.fixture
def dep(built, tmp_path):
    """A fresh copy of the deployment (and of its cache, which the copy's record names)."""
    shutil.copytree(built / "deploy", tmp_path / "deploy")
    shutil.copytree(built / "cache", tmp_path / "cache")
    _retarget(tmp_path / "deploy", tmp_path / "cache")
    for name in ("r0.txt", "r1.txt"):
        shutil.copyfile(built / name, tmp_path / name)
    return tmp_path / "deploy"


def _retarget(deploy: Path, cache: Path) -> None:
    """Point the copy's init entry at its own cache, re-chaining the ledger (a test's copy)."""
    lines = entries(deploy)
    lines[0]["payload"]["cache_dir"] = str(cache)
    _rewrite(deploy, lines)


def _rewrite(deploy: Path, lines: list[dict], count: int | None = None) -> None:
    """The ledger re-hashed from its first entry on, and the pointer moved to its head."""
    prev = "0" * 64
    out = []
    for entry in lines:
        entry = make_entry(entry["seq"], entry["kind"], entry["payload"], prev) | {
            "time": entry["time"]}
        from sftc.deploy.ledger import entry_sha256
        entry["sha256"] = entry_sha256(entry)
        out.append(entry)
        prev = entry["sha256"]
    (deploy / "ledger.jsonl").write_text("".join(canonical(e) + "\n" for e in out))
    pointer = json.loads((deploy / "published.json").read_text())
    count = len(out) if count is None else count
    pointer["ledger"] = {"count": count, "head": out[count - 1]["sha256"]}
    (deploy / "published.json").write_text(json.dumps(pointer))


def _append(deploy: Path, kind: str, payload) -> dict:
    """A correctly chained entry appended beyond the pointer (it takes SHA-256 only)."""
    lines = entries(deploy)
    entry = make_entry(len(lines), kind, payload, lines[-1]["sha256"])
    with open(deploy / "ledger.jsonl", "a") as fh:
        fh.write(canonical(entry) + "\n")
    return entry


# -- one lock for every path to the deployment --------------------------------------------------

@pytest.mark.parametrize("alias", ["symlink", "dotdot"])
def test_a_deployment_reached_through_an_alias_is_locked(dep, tmp_path, capsys, alias):
    from sftc.deploy.folder import Deployment

    if alias == "symlink":
        other = tmp_path / "link"
        other.symlink_to(dep)
    else:
        other = Path(f"{dep}/../{dep.name}")
    before = entries(dep)
    with Deployment(dep).lock():
        code, out = run("deploy", "forget", "--dir", other, "--request", tmp_path / "r1.txt",
                        "--id", "p1", *FIXED, *FAST, capsys=capsys)
    assert code == 2 and "is writing deployment" in out and len(out.strip().splitlines()) == 1
    assert entries(dep) == before
    code, out = run("deploy", "status", "--dir", other, capsys=capsys)   # the alias still works
    assert code == 0 and f"deployment {dep.resolve()}:" in out


def test_another_path_to_the_same_folder_is_locked(dep, tmp_path, capsys):
    """A bind mount gives the folder a second real path: the flock on the folder itself (its
    inode) is what they share."""
    fd = os.open(dep, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)     # as a command through another path holds
    try:
        code, out = run("deploy", "forget", "--dir", dep, "--request", tmp_path / "r1.txt",
                        "--id", "p1", *FIXED, *FAST, capsys=capsys)
    finally:
        os.close(fd)
    assert code == 2 and "through another path to the same folder" in out


def test_a_real_bind_mount_is_locked(dep, tmp_path):
    """Where this machine lets an unprivileged user mount (a user namespace), a bind mount of the
    folder is refused while the folder is locked through its own path."""
    import subprocess
    import sys

    if shutil.which("unshare") is None:
        pytest.skip("no unshare here")
    mount = tmp_path / "mnt"
    mount.mkdir()
    script = (f"mount --bind {dep} {mount} && {sys.executable} -c \"from sftc.cli import main; "
              f"raise SystemExit(main(['deploy', 'recover', '--dir', '{mount}']))\"")
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode:
        pytest.skip("no user namespaces here")
    from sftc.deploy.folder import Deployment

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with Deployment(dep).lock():
        done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True,
                              text=True, env=env)
    assert done.returncode == 2 and "another path to the same folder" in done.stderr, done


# -- forged entries -----------------------------------------------------------------------------

def _forged_published(deploy: Path, **changes) -> dict:
    """The payload of a forged ``published`` entry for v2, from p0's, with ``changes``."""
    p0 = next(e for e in entries(deploy) if e["kind"] == "published")["payload"]
    payload = {**p0, "request": "forged", "version": 2, "intent": 99,
               "child": {**p0["child"], "path": "versions/v2/model.pt"}}
    payload.update(changes)
    return payload


@pytest.mark.parametrize("shape", ["dotdot", "absolute", "no-audits", "no-intent", "not-a-dict"])
def test_a_forged_entry_beyond_the_pointer_removes_nothing(dep, tmp_path, capsys, shape):
    victim = tmp_path / "victim" / "keep"
    victim.mkdir(parents=True)
    (victim / "precious.txt").write_text("keep me")
    purge = {"dotdot": [{"entry": "../../victim/keep", "file": None, "what": "", "why": ""}],
             "absolute": [{"entry": str(victim), "file": None, "what": "", "why": ""}]}.get(
        shape, [])
    payload = _forged_published(dep, purge=purge)
    if shape == "no-audits":
        payload["audits"] = []
    if shape == "not-a-dict":
        payload = ["not", "a", "payload"]
    if shape != "no-intent":
        _append(dep, "intent", {"request": "forged", "version": 2, "removed": []})
        # and the pointer acknowledging the intent, as a running forget leaves it
        pointer = json.loads((dep / "published.json").read_text())
        pointer["ledger"] = {"count": len(entries(dep)), "head": entries(dep)[-1]["sha256"]}
        (dep / "published.json").write_text(json.dumps(pointer))
    (dep / "versions" / "v2").mkdir()
    # the published model's bytes (v0 is pruned under the default --keep published): the
    # forged entry's child SHA-256 (p0's) matches them, so only its shape and its intent betray it
    shutil.copyfile(dep / "versions" / "v1" / "model.pt", dep / "versions" / "v2" / "model.pt")
    _append(dep, "published", payload)
    pointer = (dep / "published.json").read_text()
    for action in ("status", "verify", "recover"):
        code, out = run("deploy", action, "--dir", dep, capsys=capsys)
        assert code == 2 and len(out.strip().splitlines()) == 1, (action, out)
        assert "internal error" not in out and ("forged" in out or "edited" in out), out
    code, out = run("deploy", "forget", "--dir", dep, "--request", tmp_path / "r1.txt", "--id",
                    "p1", *FIXED, *FAST, capsys=capsys)
    assert code == 2 and "internal error" not in out
    assert (victim / "precious.txt").read_text() == "keep me"
    assert (dep / "published.json").read_text() == pointer          # nothing published


def _bad_interval(audits):
    return [{**audits[0], "request": "forged", "interval": {"low": "x"}}]


@pytest.mark.parametrize("change, named", [
    (lambda p: {"audits": []}, "no audits, the request's own first"),
    (lambda p: {"audits": _bad_interval(p["audits"])}, "has no verdict that meets its policy"),
    (lambda p: {"audits": [{**p["audits"][0], "request": "forged", "meets_policy": False}]},
     "has no verdict that meets its policy"),
    (lambda p: {"failed": [{"request": "forged", "why": "x"}],
                "audits": [{**p["audits"][0], "request": "forged"}]}, "or a failed audit"),
    (lambda p: {"version": "2"}, "publish version v2"),
    (lambda p: {"removed": "everything"}, "no list of removed samples"),
])
def test_an_acknowledged_forged_entry_is_one_line(dep, capsys, change, named):
    """A ledger re-hashed with a forged published entry and its pointer rewritten: every
    command names the entry in one line (no TypeError); --expect-head would catch the rewrite
    (test_verify_expect_head)."""
    p0 = next(e for e in entries(dep) if e["kind"] == "published")["payload"]
    lines = entries(dep)
    lines.append({"seq": len(lines), "kind": "published", "time": "2026-01-01T00:00:00+0000",
                  "payload": _forged_published(dep, **change(p0))})
    _rewrite(dep, lines)
    for action in ("status", "verify", "recover"):
        code, out = run("deploy", action, "--dir", dep, capsys=capsys)
        assert code == 2 and "is not an entry sftc writes" in out and named in out, out
        assert len(out.strip().splitlines()) == 1


def test_purge_items_are_confined_to_the_cache(tmp_path):
    from sftc.deploy import purge
    from sftc.errors import SftcError

    models = tmp_path / "cache" / "models"
    (models / "ok").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (models / "link").symlink_to(outside)
    for bad in ({"entry": "..", "file": None}, {"entry": "ok", "file": "../../x"},
                {"entry": "/etc", "file": None}, {"entry": "link", "file": None},
                {"entry": "a/../../b", "file": None}, "not an item"):
        with pytest.raises(SftcError, match="nothing was removed"):
            purge.execute(tmp_path / "cache", [{"entry": "ok", "file": None}, bad])
        assert (models / "ok").is_dir() and outside.is_dir()    # refused whole, before removing


# -- status: a report that never writes; every file hashed ---------------------------------------

def test_status_never_writes(dep, capsys):
    with open(dep / "ledger.jsonl", "a") as fh:
        fh.write('{"kind":"intent","payload":{"requ')          # an append killed mid-write
    (dep / ".work").mkdir()
    (dep / ".work" / "debris").write_text("x")
    before = snapshot(dep)
    code, out = run("deploy", "status", "--dir", dep, capsys=capsys)
    assert code == 0 and "pending: a torn last ledger line" in out
    assert "'sftc deploy recover --dir" in out
    assert snapshot(dep) == before
    code, out = run("deploy", "status", "--dir", dep, "--json", capsys=capsys)
    assert code == 0 and snapshot(dep) == before
    report = json.loads(out)
    from sftc.deploy.names import Names

    init = json.loads((dep / "ledger.jsonl").read_text().splitlines()[0])["payload"]
    p0 = Names.of(init).request("p0")                 # --json keeps the ledger's pseudonyms
    assert report["published"]["version"] == 1 and report["requests"][0]["request"] == p0
    assert "pseudonym" in report["ids"] and "p0" not in out
    assert report["requests"][0]["method"] == "sftc" and report["requests"][0]["published"]
    code, out = run("deploy", "recover", "--dir", dep, capsys=capsys)
    assert code == 0 and "recovered: cut a torn last ledger line" in out
    assert not (dep / ".work").exists()


@pytest.mark.parametrize("changed, named", [
    ("versions/v1/model.pt", "versions/v1/model.pt does not match"),
    ("samples.json", "samples.json does not match"),
    ("versions/v1/outcome.json", "versions/v1/outcome.json does not match"),
    ("versions/v9", "versions/v9 is not recorded in the ledger"),
    ("versions/v1/extra.txt", "versions/v1/extra.txt is not recorded in the ledger"),
])
def test_status_and_verify_name_the_file_changed_by_hand(dep, capsys, changed, named):
    path = dep / changed
    if changed == "versions/v9":
        path.mkdir()
    elif changed.endswith("outcome.json"):
        outcome = json.loads(path.read_text())
        outcome["audits"][0]["verdict"] = "forgotten"               # a lie, edited in
        path.write_text(json.dumps(outcome))
    elif path.exists():
        path.write_bytes(path.read_bytes() + b" ")
    else:
        path.write_text("x")
    for action in ("status", "verify"):
        code, out = run("deploy", action, "--dir", dep, capsys=capsys)
        assert code == 2 and named in out and len(out.strip().splitlines()) == 1, (action, out)


def test_verify_expect_head(dep, capsys):
    code, out = run("deploy", "verify", "--dir", dep, capsys=capsys)
    head = json.loads((dep / "published.json").read_text())["ledger"]["head"]
    assert run("deploy", "verify", "--dir", dep, "--expect-head", head, capsys=capsys)[0] == 0
    assert run("deploy", "verify", "--dir", dep, "--expect-head", head[:12],
               capsys=capsys)[0] == 0
    lines = entries(dep)
    lines[1]["payload"]["method"] = "rewritten"                      # the whole ledger re-hashed
    _rewrite(dep, lines)
    assert run("deploy", "verify", "--dir", dep, capsys=capsys)[0] == 0   # passes, as documented
    code, out = run("deploy", "verify", "--dir", dep, "--expect-head", head, capsys=capsys)
    assert code == 2 and "holds no entry with the kept head" in out
    code, out = run("deploy", "verify", "--dir", dep, "--expect-head", "xyz", capsys=capsys)
    assert code == 2 and "give the head hash" in out


def test_verify_into_a_closed_pipe_says_nothing(dep):
    import subprocess
    import sys

    read, write = os.pipe()
    os.close(read)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-m", "sftc", "deploy", "verify", "--dir", str(dep)],
                          stdout=write, stderr=subprocess.PIPE, text=True, env=env)
    os.close(write)
    assert done.returncode == 0 and done.stderr == "", done.stderr


# -- refused before the intent ------------------------------------------------------------------

def _refused_before_intent(dep, tmp_path, capsys, *argv, request=None):
    before = (dep / "ledger.jsonl").read_bytes()
    code, out = run("deploy", "forget", "--dir", dep, "--request", request or tmp_path / "r1.txt",
                    "--id", "p1", *argv, capsys=capsys)
    assert code == 2 and len(out.strip().splitlines()) <= 2, out
    assert (dep / "ledger.jsonl").read_bytes() == before              # no intent written
    return out


def test_unbounded_values_are_refused_before_the_intent(dep, tmp_path, capsys):
    out = _refused_before_intent(dep, tmp_path, capsys, *FIXED, "--references", "1000000000",
                                 "--no-paper-metrics", "--quiet", "--device", "cpu")
    assert "--references 1000000000" in out and "memory" in out
    out = _refused_before_intent(dep, tmp_path, capsys, "--trials", "1000000000",
                                 *FAST)
    assert "--trials 1000000000" in out and "memory" in out


def test_a_request_for_the_whole_training_set_is_refused_before_its_intent(dep, tmp_path,
                                                                            capsys):
    record = json.loads((dep / "samples.json").read_text())
    left = [s["id"] for s in record["train"]][4:]
    (tmp_path / "all.txt").write_text("\n".join(left) + "\n")
    out = _refused_before_intent(dep, tmp_path, capsys, *FIXED, *FAST,
                                 request=tmp_path / "all.txt")
    assert "nothing would be left to retain" in out


def test_forget_takes_plugin_after_the_action(dep, tmp_path, capsys):
    plugin = tmp_path / "marker_plugin_after.py"
    plugin.write_text("LOADED = True\n")
    code, out = run("deploy", "verify", "--plugin", plugin, "--dir", dep, capsys=capsys)
    assert code == 0, out
    import sys
    assert sys.modules["marker_plugin_after"].LOADED
    other = tmp_path / "marker_plugin_before.py"
    other.write_text("LOADED = True\n")
    code, out = run("deploy", "--plugin", other, "status", "--plugin", plugin, "--dir", dep,
                    capsys=capsys)                          # both places, together
    assert code == 0 and sys.modules["marker_plugin_before"].LOADED, out
    code, out = run("deploy", "forget", "--plugin", plugin, "--dir", dep, "--request",
                    tmp_path / "r1.txt", "--id", "p0", *FIXED, *FAST, capsys=capsys)
    assert code == 2 and "request p0 was published already" in out    # parsed, then refused


# -- init ---------------------------------------------------------------------------------------

def test_init_refuses_a_cache_dir_that_is_a_file(built, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, out = run("deploy", "init", "--dir", tmp_path / "d", "--checkpoint",
                    built / "orig" / "model.pt", "--cache-dir", tmp_path / "file", capsys=capsys)
    assert code == 2 and "--cache-dir" in out and "is a file" in out
    assert not (tmp_path / "d").exists()


def test_init_takes_the_dataset_from_the_checkpoints_record(built, tmp_path, capsys):
    from sftc.deploy.create import recorded_dataset

    record = json.loads((built / "orig" / "run.json").read_text())
    assert recorded_dataset(record, None, None) == ("digits", None)
    assert recorded_dataset({"trained_on": {"dataset": "imagefolder"},
                             "config": {"data_dir": "/data"}}, None, None) == ("imagefolder",
                                                                              "/data")
    assert recorded_dataset(None, None, None) == ("digits", None)
    assert recorded_dataset(record, "cifar10", None) == ("cifar10", None)
    shutil.copytree(built / "orig", tmp_path / "orig")
    record["trained_on"]["dataset"] = "no-such-data"        # not digits, the old default
    (tmp_path / "orig" / "run.json").write_text(json.dumps(record))
    code, out = run("deploy", "init", "--dir", tmp_path / "d", "--checkpoint",
                    tmp_path / "orig" / "model.pt", "--cache-dir", tmp_path / "c", capsys=capsys)
    assert code == 2 and "reading no-such-data" in out and "unknown dataset 'no-such-data'" in out


def test_a_three_channel_checkpoint_for_digits_does_not_blame_mean(built, tmp_path, capsys):
    shutil.copytree(built / "orig", tmp_path / "orig")
    record = json.loads((tmp_path / "orig" / "run.json").read_text())
    record["trained_on"]["preprocessing"].update(mean=[0.5, 0.5, 0.5], std=[0.2, 0.2, 0.2])
    (tmp_path / "orig" / "run.json").write_text(json.dumps(record))
    checkpoint = tmp_path / "orig" / "model.pt"
    for argv in (["deploy", "init", "--dir", tmp_path / "d", "--checkpoint", checkpoint,
                  "--dataset", "digits"],
                 ["unlearn", "--dataset", "digits", "--forget", "random:0.1", "--checkpoint",
                  checkpoint, "--out", tmp_path / "u", "--quiet", "--device", "cpu"]):
        code, out = run(*argv, capsys=capsys)
        assert code == 2 and "was trained on 3-channel images" in out, out
        assert "--mean needs" not in out


def test_init_with_another_dataset_than_recorded_names_it_not_its_subsets(built, tmp_path,
                                                                          capsys):
    shutil.copytree(built / "orig", tmp_path / "orig")
    record = json.loads((tmp_path / "orig" / "run.json").read_text())
    record["trained_on"].update(dataset="fashion-mnist",
                                subsets={"train": 5000, "test": 1000, "val": 500})
    (tmp_path / "orig" / "run.json").write_text(json.dumps(record))
    code, out = run("deploy", "init", "--dir", tmp_path / "d", "--checkpoint",
                    tmp_path / "orig" / "model.pt", "--dataset", "digits", "--cache-dir",
                    tmp_path / "c", capsys=capsys)
    assert code == 2 and "was trained on 'fashion-mnist', not on --dataset digits" in out, out


@pytest.mark.parametrize("kind, payload", [
    ("intent", {"request": 5, "version": 2}),
    ("intent", ["a", "list"]),
    ("refused", {"request": "x"}),
    ("refused", {"request": "x", "attempt": "attempts/9-x", "files": {}, "failed": []}),
    ("rolled-back", {"request": "x"}),
    ("wiped", {"request": "x"}),
    ("pruned", {"keep": "published", "versions": "all", "attempts": [], "cache": []}),
    ("pruned", {"keep": "published", "versions": [{"version": "../../victim"}], "attempts": [],
                "cache": []}),
    ("pruned", {"keep": "published", "versions": [{"version": 0, "path": "versions/vx"}],
                "attempts": [], "cache": []}),
    ("pruned", {"keep": "published", "versions": [], "attempts": [{"attempt": 3}],
                "cache": []}),
    ("pruned", {"keep": "published", "versions": [], "attempts": [], "cache": [],
                "samples": {"sha256": None}}),
])
def test_forged_entries_of_other_kinds_are_one_line(dep, capsys, kind, payload):
    _append(dep, kind, payload)
    for action in ("status", "verify", "recover"):
        code, out = run("deploy", action, "--dir", dep, capsys=capsys)
        assert code == 2 and "is not an entry sftc writes" in out, (action, out)
        assert len(out.strip().splitlines()) == 1 and "internal error" not in out
