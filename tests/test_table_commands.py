"""Every command on a small generated table (--dataset csv): train, unlearn (every method and
retrain), evaluate, audit, forgetting-score, benchmark, sweep, deploy (requests naming row ids)."""
import json

import pytest

from sftc.cli import main
from tables import first_args, table_args, write_table

FAST = ["--quiet", "--device", "cpu"]
METHODS = ["ft", "neggrad+", "neggrad", "cf-k", "eu-k", "bad-teaching", "scrub", "sftc",
           "retrain"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("table-runs")
    table = write_table(root / "t.csv")
    assert main(["train", *first_args(table), "--out", str(root / "orig"), "--epochs", "3",
                 *FAST]) == 0
    assert main(["train", *first_args(table), "--subset", "retain",
                 "--forget", "group:o1", "--out", str(root / "rt"), "--epochs", "3",
                 *FAST]) == 0
    return root, table


@pytest.mark.parametrize("method", METHODS)
def test_unlearn_with_every_method(runs, method):
    root, table = runs
    out = root / f"u-{method}"
    extra = ["--k", "1"] if method in ("cf-k", "eu-k") else []
    assert main(["unlearn", *table_args(table), "--checkpoint", str(root / "orig" / "model.pt"),
                 "--method", method, "--forget", "group:o1", "--epochs", "1", "--out", str(out),
                 "--no-mia", *extra, *FAST]) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["forget"]["spec"] == "group:o1" and record["config"]["model"] == "resmlp"


def test_evaluate_and_audit(runs, capsys, tmp_path):
    root, table = runs
    if not (root / "u-sftc").exists():
        test_unlearn_with_every_method(runs, "sftc")
    models = ["--original", str(root / "orig" / "model.pt"), "--unlearned",
              str(root / "u-sftc" / "model.pt")]
    assert main(["evaluate", *table_args(table), *models, "--retrained",
                 str(root / "rt" / "model.pt"), "--forget", "group:o1", "--mia-iterations", "10",
                 *FAST[1:]]) == 0
    assert "acc_dis" in capsys.readouterr().out
    assert main(["audit", *table_args(table), *models, "--forget", "group:o1", "--references",
                 "4", "--ref-epochs", "2", "--no-paper-metrics", "--out", str(tmp_path / "a"),
                 "--cache-dir", str(tmp_path / "cache"), *FAST]) == 0
    audit = json.loads((tmp_path / "a" / "audit.json").read_text())
    assert audit["references"]["count"] == 4


def test_forgetting_score(runs, tmp_path):
    _, table = runs
    assert main(["forgetting-score", *table_args(table, "--target", "label"), "--method", "ft",
                 "--forget", "random:0.1", "--models", "3", "--epochs", "2", "--out",
                 str(tmp_path / "f"), "--cache-dir", str(tmp_path / "cache"), *FAST]) == 0
    assert (tmp_path / "f" / "forgetting.json").is_file()


def test_benchmark_and_sweep(runs, tmp_path):
    _, table = runs
    common = [*table_args(table, "--target", "label", "--id-column", "cid"), "--seeds", "0",
              "--train-epochs", "2", "--mia-iterations", "10", "--cache-dir",
              str(tmp_path / "cache"), *FAST]
    assert main(["benchmark", *common, "--methods", "ft,sftc", "--lrs", "1e-3", "--max-epochs",
                 "1", "--out", str(tmp_path / "b")]) == 0
    table1 = json.loads((tmp_path / "b" / "table1.json").read_text())
    assert {r["label"] for r in table1["rows"]} >= {"ORI", "RT", "FT", "SFTC"}
    assert main(["sweep", *common, "--param", "lr", "--values", "1e-3,5e-4", "--method", "sftc",
                 "--epochs", "1", "--out", str(tmp_path / "s")]) == 0
    assert (tmp_path / "s" / "sensitivity.csv").is_file()


def test_deploy_requests_name_row_ids(runs, tmp_path, capsys):
    root, table = runs
    dep = tmp_path / "dep"
    assert main(["deploy", "init", "--dir", str(dep), "--checkpoint",
                 str(root / "orig" / "model.pt"), *table_args(table), "--cache-dir",
                 str(tmp_path / "cache")]) == 0
    samples = json.loads((dep / "samples.json").read_text())
    assert samples["ids"] == "row id (--id-column cid)"
    ids = [s["id"] for s in samples["train"]]
    assert all(i.startswith("c") for i in ids)
    request = tmp_path / "request.txt"
    request.write_text(f"{ids[0]}\n{ids[1]}\n")
    capsys.readouterr()
    code = main(["deploy", "forget", "--dir", str(dep), "--request", str(request), "--id",
                 "user1", "--epochs", "1", "--lr", "1e-3", "--references", "4", "--no-mia",
                 *FAST])
    assert code in (0, 3)              # published or not, by the verdict; never an error
    assert "request user1" in capsys.readouterr().out
    request.write_text("c999\n")
    assert main(["deploy", "forget", "--dir", str(dep), "--request", str(request), "--id",
                 "user2", "--epochs", "1", "--lr", "1e-3", "--references", "4", "--no-mia",
                 *FAST]) == 2
