"""``sftc deploy``'s retention policy and pseudonyms: after a published request the deployment
holds nothing that trained on a removed sample unless ``--keep`` says so, what was pruned stays
hashed in the ledger (``verify`` checks it), a ``kill -9`` mid-prune is finished, and the
ledger names requests and samples only by keyed hashes."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from sftc.cli import main
from sftc.deploy.names import Names

FAST = ["--references", "4", "--no-paper-metrics", "--no-mia", "--quiet", "--device", "cpu",
        "--epochs", "1", "--lr", "1e-3", "--require", "not-refuted"]
SUBSETS = ["--train-subset", "60", "--test-subset", "40", "--val-subset", "20"]


def run(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("orig")
    assert main(["train", "--dataset", "digits", *SUBSETS, "--epochs", "2", "--quiet",
                 "--device", "cpu", "--out", str(root / "orig")]) == 0
    return root / "orig" / "model.pt"


def make(tmp_path, original, capsys, *extra) -> Path:
    deploy = tmp_path / "deploy"
    code, out = run(capsys, "deploy", "init", "--dir", deploy, "--checkpoint", original,
                    "--ref-epochs", "1", "--cache-dir", tmp_path / "cache", *extra)
    assert code == 0, out
    return deploy


def request(deploy: Path, capsys, name: str, ids: list[str], *extra) -> tuple[int, str]:
    path = deploy.parent / f"{name}.txt"
    path.write_text("".join(f"{i}\n" for i in ids))
    return run(capsys, "deploy", "forget", "--dir", deploy, "--request", path, "--id", name,
               *FAST, *extra)


def ids(deploy: Path) -> list[str]:
    return [s["id"] for s in json.loads((deploy / "samples.json").read_text())["train"]]


def entries(deploy: Path) -> list[dict]:
    return [json.loads(x) for x in (deploy / "ledger.jsonl").read_text().splitlines()]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def models_in(deploy: Path) -> set[str]:
    """The SHA-256 of every file in the deployment that holds weights (any torch file)."""
    return {sha(p) for p in deploy.rglob("*") if p.is_file() and p.suffix in (".pt", ".pth")}


def published_models(deploy: Path, keep: int) -> set[str]:
    """The models of the ``keep`` newest versions (v0 = the deployed checkpoint)."""
    log = entries(deploy)
    chain = [log[0]["payload"]["model"]["sha256"],
             *(e["payload"]["child"]["sha256"] for e in log if e["kind"] == "published")]
    return set(chain[-keep:])


def test_keep_published_leaves_nothing_that_trained_on_a_removed_sample(tmp_path, original,
                                                                        capsys):
    deploy = make(tmp_path, original, capsys)
    assert (tmp_path / "deploy.key").is_file()                     # outside the deployment
    every = ids(deploy)
    code, out = request(deploy, capsys, "alice", every[:4])
    assert code == 0, out
    assert "pruned under --keep published: v0, 0 attempt(s)" in out
    assert models_in(deploy) == published_models(deploy, 1)        # v0 is gone, v1 stays
    assert not (deploy / "versions" / "v0").exists()
    # a refused attempt (its audits) goes too once a later version is published
    code, out = request(deploy, capsys, "bob", every[4:8], "--require", "forgotten")
    assert code == 3 and (deploy / "attempts").iterdir()
    code, out = request(deploy, capsys, "bob", every[4:8])
    assert code == 0, out
    assert "request alice: not re-audited (v0, the last version that held its samples, was " \
           "pruned" in out
    assert models_in(deploy) == published_models(deploy, 1)
    assert not list((deploy / "attempts").iterdir())
    assert sorted(p.name for p in (deploy / "versions").iterdir()) == ["v2"]
    pruned = [e["payload"] for e in entries(deploy) if e["kind"] == "pruned"]
    assert [[v["version"] for v in p["versions"]] for p in pruned] == [[0], [1]]
    assert pruned[1]["versions"][0]["files"]["model.pt"] in published_models(deploy, 2)
    assert len(pruned[1]["attempts"]) == 1
    code, out = run(capsys, "deploy", "verify", "--dir", deploy)
    assert code == 0 and "chain intact" in out, out
    code, out = run(capsys, "deploy", "prune", "--dir", deploy)
    assert code == 0 and "nothing to prune under --keep published (v2 published)" in out
    code, out = request(deploy, capsys, "carol", every[:4])     # alice's samples, pseudonymised
    assert code == 2 and f"{every[0]} was removed already by a published request" in out, out


def test_the_ledger_names_requests_and_samples_by_keyed_hash(tmp_path, original, capsys):
    (tmp_path / "keys").mkdir()
    deploy = make(tmp_path, original, capsys, "--key-file", tmp_path / "keys" / "k")
    every = ids(deploy)
    asked = every[10:14]
    code, out = request(deploy, capsys, "carol.smith", asked)
    assert code == 0 and "for request carol.smith" in out, out     # the operator reads plain ids
    init = entries(deploy)[0]["payload"]
    key = (tmp_path / "keys" / "k").read_text()
    assert init["pseudonyms"]["key_file"] == str(tmp_path / "keys" / "k")
    names = Names.of(init)
    text = "\n".join(p.read_text() for p in deploy.rglob("*")
                     if p.is_file() and p.suffix in (".json", ".jsonl"))
    assert key.strip() not in text and "carol.smith" not in text
    assert names.request("carol.smith") in text
    published = [e["payload"] for e in entries(deploy) if e["kind"] == "published"][0]
    assert [s["id"] for s in published["removed"]] == [names.sample(i) for i in asked]
    record = json.loads((deploy / "samples.json").read_text())["train"]
    assert [s["id"] for s in record[10:14]] == [names.sample(i) for i in asked]  # pruned
    mapping = json.loads((tmp_path / "keys" / "k.ids.json").read_text())
    assert mapping[names.request("carol.smith")] == "carol.smith"
    code, out = run(capsys, "deploy", "status", "--dir", deploy)
    assert code == 0 and re.search(r"\n  v1 carol\.smith \(.*\): 4 samples;", out), out
    assert names.request("carol.smith") not in out
    code, out = request(deploy, capsys, "carol.smith", every[20:24])
    assert code == 2 and "request carol.smith was published already (v1)" in out
    # without the key the deployment is refused in one line; a wrong key too
    (tmp_path / "keys" / "k").rename(tmp_path / "keys" / "kept")
    code, out = request(deploy, capsys, "dave", every[20:24])
    assert code == 2 and "key file" in out and "is missing" in out and len(out.splitlines()) == 1
    code, out = run(capsys, "deploy", "status", "--dir", deploy)   # a report: pseudonyms, noted
    assert code == 0 and "requests are shown by pseudonym" in out
    assert re.search(rf"\n  v1 {names.request('carol.smith')} \(.*\): 4 samples;", out), out
    (tmp_path / "keys" / "k").write_text("ab" * 32 + "\n")
    code, out = request(deploy, capsys, "dave", every[20:24])
    assert code == 2 and "is not this deployment's key" in out


def test_keep_last_and_all_keep_what_they_say(tmp_path, original, capsys):
    for keep, versions in (("last:2", ["v1", "v2"]), ("all", ["v0", "v1", "v2"])):
        folder = tmp_path / keep.replace(":", "")
        folder.mkdir()
        deploy = make(folder, original, capsys, "--keep", keep)
        every = ids(deploy)
        assert request(deploy, capsys, "a", every[:4])[0] == 0
        code, out = request(deploy, capsys, "b", every[4:8])
        assert code == 0, out
        assert sorted(p.name for p in (deploy / "versions").iterdir()) == versions
        assert models_in(deploy) == published_models(deploy, len(versions))
        if keep == "all":
            assert "request a (re-audit on v2)" in out
        assert run(capsys, "deploy", "verify", "--dir", deploy)[0] == 0


def test_bad_retention_options_are_one_line(tmp_path, original, capsys):
    for extra, message in ((["--keep", "last:0"], "--keep 'last:0': give published"),
                           (["--keep", "some"], "--keep 'some': give published"),
                           (["--key-file", tmp_path / "deploy" / "k"], "lies inside --dir")):
        code, out = run(capsys, "deploy", "init", "--dir", tmp_path / "deploy", "--checkpoint",
                        original, *extra)
        assert code == 2 and message in out and len(out.strip().splitlines()) == 1, out
        assert not (tmp_path / "deploy").exists()
    (tmp_path / "bad.key").write_text("not a key\n")
    code, out = run(capsys, "deploy", "init", "--dir", tmp_path / "deploy", "--checkpoint",
                    original, "--key-file", tmp_path / "bad.key")
    assert code == 2 and "is not an sftc key file" in out
    assert (tmp_path / "bad.key").read_text() == "not a key\n"     # the user's file untouched


def killed(deploy: Path, request_file: Path, name: str, point: str) -> None:
    """``deploy forget`` run in a forked child that SIGKILLs itself at ``point``."""
    import os
    import signal

    from sftc.deploy.folder import KILL_AT

    pid = os.fork()
    if pid == 0:                                       # the child: never returns to pytest
        code = 1
        try:
            os.environ[KILL_AT] = point
            code = main(["deploy", "forget", "--dir", str(deploy), "--request",
                         str(request_file), "--id", name, *FAST])
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status


def test_a_prune_killed_half_way_is_finished_by_the_next_command(tmp_path, original, capsys):
    deploy = make(tmp_path, original, capsys)
    path = tmp_path / "r.txt"
    path.write_text("".join(f"{i}\n" for i in ids(deploy)[:4]))
    killed(deploy, path, "p0", "after-prune-entry")
    capsys.readouterr()
    assert entries(deploy)[-1]["kind"] == "pruned" and (deploy / "versions" / "v0").exists()
    code, out = run(capsys, "deploy", "verify", "--dir", deploy)
    assert code == 0 and "entry 3 (pruned) lies beyond the published pointer" in out, out
    # killed later, with the prune carried out (samples.json rewritten) but not acknowledged
    import shutil

    from sftc.deploy import retention
    from sftc.deploy.folder import Deployment

    late = tmp_path / "late"
    shutil.copytree(deploy, late)
    log = entries(late)
    retention.finish(Deployment(late), log, log[-1], Names.of(log[0]["payload"]))
    assert not (late / "versions" / "v0").exists()
    code, out = run(capsys, "deploy", "verify", "--dir", late)
    assert code == 0 and "lies beyond the published pointer" in out, out
    # status only reports it (it never writes); recover (or the next forget or prune) finishes
    code, out = run(capsys, "deploy", "status", "--dir", deploy)
    assert code == 0 and "pending: entry 3 (pruned) lies beyond the published pointer" in out
    assert "'sftc deploy recover --dir" in out and (deploy / "versions" / "v0").exists(), out
    code, out = run(capsys, "deploy", "recover", "--dir", deploy)
    assert code == 0 and "resumed: finished the prune of entry 3" in out, out
    assert not (deploy / "versions" / "v0").exists()
    code, out = run(capsys, "deploy", "status", "--dir", deploy)
    assert code == 0 and "published: v1" in out and "pending:" not in out, out
    assert models_in(deploy) == published_models(deploy, 1)
    assert run(capsys, "deploy", "verify", "--dir", deploy)[0] == 0
    # killed after a publication was recorded: resuming it prunes as the forget would have
    path.write_text("".join(f"{i}\n" for i in ids(deploy)[4:8]))
    killed(deploy, path, "p1", "after-entry")
    capsys.readouterr()
    code, out = run(capsys, "deploy", "status", "--dir", deploy)
    assert code == 0 and "pending: entry 5 (published) lies beyond the published pointer" in out
    assert "published: v1" in out and (deploy / "versions" / "v1").exists(), out
    code, out = run(capsys, "deploy", "recover", "--dir", deploy)
    assert "resumed: request p1 was recorded as published" in out, out   # a plain id
    assert "pruned under --keep published: v1" in out, out
    code, out = run(capsys, "deploy", "status", "--dir", deploy)
    assert code == 0 and "published: v2" in out and "pending:" not in out, out
    assert models_in(deploy) == published_models(deploy, 1)
    assert run(capsys, "deploy", "verify", "--dir", deploy)[0] == 0


def test_own_images_leave_no_name_bytes_or_model_of_a_removed_person(tmp_path, capsys):
    """Own PNGs named after people: after a published request under the default policy, the
    deployment holds no byte of the removed images, no decoded pixels, no model but the
    published one, and not their file names (the ledger and samples.json use pseudonyms)."""
    import numpy as np
    from PIL import Image

    import sftc

    rng = np.random.default_rng(0)
    files = {}
    for part, n in (("train", 14), ("val", 8), ("test", 8)):
        for c in range(4):
            folder = tmp_path / "pngs" / part / f"c{c}"
            folder.mkdir(parents=True)
            for k in range(n):
                pixels = np.clip(40 + 50 * c + rng.integers(-40, 40, (8, 8)), 0, 255)
                name = f"maria-garcia-{k}.png" if part == "train" and k < 2 else f"x{k:02d}.png"
                Image.fromarray(pixels.astype(np.uint8), "L").save(folder / name)
                files[f"{part}/c{c}/{name}"] = (folder / name).read_bytes()
    pngs = tmp_path / "pngs"
    assert main(["train", "--dataset", "imagefolder", "--data-dir", str(pngs), "--epochs", "2",
                 "--quiet", "--device", "cpu", "--out", str(tmp_path / "orig")]) == 0
    deploy = tmp_path / "deploy"
    code, out = run(capsys, "deploy", "init", "--dir", deploy, "--dataset", "imagefolder",
                    "--data-dir", pngs, "--checkpoint", tmp_path / "orig" / "model.pt",
                    "--ref-epochs", "1", "--cache-dir", tmp_path / "cache")
    assert code == 0, out
    asked = [f"c{c}/maria-garcia-{k}.png" for c in range(4) for k in range(2)]
    code, out = request(deploy, capsys, "maria.garcia", asked)
    assert code == 0 and "published v1" in out, out
    loaded = sftc.load_dataset("imagefolder", pngs)
    gone = [files[f"train/{p}"] for p in asked]
    pixels = [loaded.data.images[loaded.train[loaded.train_names.index(p)]].numpy().tobytes()
              for p in asked]
    for path in deploy.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert not any(g in content for g in gone + pixels), path
            assert b"maria" not in content.lower() and b"garcia" not in content.lower(), path
    assert models_in(deploy) == published_models(deploy, 1)
    assert run(capsys, "deploy", "verify", "--dir", deploy)[0] == 0
    code, out = run(capsys, "deploy", "status", "--dir", deploy)
    assert re.search(r"\n  v1 maria\.garcia \(.*\): 8 samples;", out), out  # plain, for the operator


def test_a_forged_prune_entry_removes_nothing(tmp_path, original, capsys):
    """A correctly chained ``pruned`` entry appended beyond the pointer (it needs no key) that
    names a folder outside the deployment, or a version the policy keeps, is refused in one
    line by verify, status and forget, and nothing is removed."""
    from sftc.deploy.ledger import Ledger

    deploy = make(tmp_path, original, capsys)
    every = ids(deploy)
    assert request(deploy, capsys, "a", every[:4])[0] == 0
    victim = tmp_path / "victim" / "keep"
    victim.mkdir(parents=True)
    (victim / "precious.txt").write_text("mine")
    for forged in ({"versions": [{"version": 1, "path": "versions/v1", "files": {}}],
                    "attempts": [], "cache": []},                     # the published version
                   {"versions": [], "attempts": [{"attempt": "attempts/../../victim/keep",
                                                  "entry": 1, "files": {}}], "cache": []},
                   {"versions": [], "attempts": [],
                    "cache": [{"entry": "../../victim", "file": None, "what": "", "why": ""}]}):
        copy = tmp_path / f"copy{len(list(tmp_path.glob('copy*')))}"
        import shutil
        shutil.copytree(deploy, copy)
        log = entries(copy)
        Ledger(copy / "ledger.jsonl").append(log, "pruned", {"keep": "published", **forged})
        for argv in (["deploy", "verify", "--dir", copy], ["deploy", "status", "--dir", copy],
                     ["deploy", "prune", "--dir", copy]):
            code, out = run(capsys, *argv)
            assert code == 2 and "is not what the deployment's retention policy removes" in out, \
                (argv, out)
        assert (copy / "versions" / "v1" / "model.pt").is_file()
        assert (victim / "precious.txt").read_text() == "mine"


def test_finish_refuses_a_folder_outside_the_deployment(tmp_path):
    """Even an acknowledged entry (the chain needs no key to be rewritten) cannot make a prune
    remove a folder outside versions/ or attempts/."""
    from sftc.deploy import retention
    from sftc.deploy.folder import Deployment
    from sftc.errors import SftcError

    (tmp_path / "victim").mkdir()
    dep = Deployment(tmp_path / "deploy")
    for item in ({"versions": [{"version": "../../victim"}], "attempts": []},
                 {"versions": [{"version": True}], "attempts": []},
                 {"versions": [], "attempts": [{"attempt": "attempts/../../victim"}]},
                 {"versions": [], "attempts": [{"attempt": "../victim"}]}):
        entry = {"seq": 9, "payload": {**item, "cache": []}}
        with pytest.raises(SftcError, match="the ledger was edited; nothing was removed"):
            retention.finish(dep, [], entry, Names())
    assert (tmp_path / "victim").is_dir()
