"""Tables as a dataset kind: ``--dataset csv --data-file FILE --target COLUMN``.

A row is a sample: its encoded columns (:mod:`sftc.data.table_encoding`) are the input, a float
vector, the target column's value its label, and ``--id-column``'s value its id (what a forget
list or a deletion request names; the row number, counted from 0, otherwise). ``--group-column``
names each row's data owner: ``--forget group:A,B`` forgets every training row of owners A and
B. Neither column is an input. The rows are split 60/20/20 into train/val/test, stratified by
class and seeded by ``--split-seed`` (as digits); the encoding is fitted on the training rows.

Needs pandas (``pip install "sftc[tables]"``); Parquet files also need a Parquet engine of
pandas (pyarrow).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import SftcError
from . import table_encoding
from .images import ImageData
from .registry import LoadedDataset, register_dataset

TABLES_HINT = 'pip install "sftc[tables]"'
#: Each class needs this many rows for a stratified 60/20/20 split (3 / 1 / 1).
MIN_CLASS_ROWS = 5
OPTIONS = ("file", "target", "id_column", "group_column")
FLAGS = {"file": "--data-file", "target": "--target", "id_column": "--id-column",
         "group_column": "--group-column"}


@dataclass
class TableData(ImageData):
    """A table's rows, encoded: float32 ``[N, features]``, with the encoding that made them."""

    table: dict = field(default_factory=dict, repr=False)

    @property
    def preprocessing(self) -> dict:
        return {"mean": None, "std": None, "image_size": None, "table": self.table}


def require_pandas():
    try:
        import pandas
    except ImportError:
        raise SftcError(f"tables are read with pandas, an optional extra: {TABLES_HINT}") from None
    return pandas


def read_table(path: Path):
    """The file as a DataFrame (CSV, or Parquet by its suffix); every problem is one line."""
    pd = require_pandas()
    if not path.is_file():
        raise SftcError(f"--data-file {path} does not exist; give a CSV (or Parquet) file with "
                        "a header row")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, skipinitialspace=True, encoding="utf-8-sig")
    except ImportError as exc:
        raise SftcError(f"--data-file {path}: pandas cannot read Parquet here ({exc}); "
                        "pip install pyarrow, or give a CSV file") from None
    except pd.errors.EmptyDataError:
        raise SftcError(f"--data-file {path} is empty; give a CSV file with a header row and "
                        "one row per sample") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SftcError(f"--data-file {path} is not a readable table: {first}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if len(set(frame.columns)) != len(frame.columns):
        dup = next(c for c in frame.columns if list(frame.columns).count(c) > 1)
        raise SftcError(f"--data-file {path}: column {dup!r} appears twice in the header")
    if frame.empty:
        raise SftcError(f"--data-file {path} has a header but no rows; give one row per sample")
    return frame.reset_index(drop=True)


def line(row: int) -> str:
    return f"row {row} (line {row + 2})"


def _options(table: dict | None) -> dict:
    """The table's options: given ones, else the recorded encoding's (target, id, group)."""
    table = dict(table or {})
    recorded = table.get("encoding") or {}
    for key in ("target", "id_column", "group_column"):
        given, was = table.get(key), recorded.get(key)
        if recorded and given is not None and given != was:
            raise SftcError(f"{FLAGS[key]} {given}: the checkpoint was trained with "
                            f"{FLAGS[key]} {was} (recorded in its run.json); drop "
                            f"{FLAGS[key]} or give {was}")
        table[key] = given if given is not None else was
    if not table.get("file"):
        raise SftcError("--dataset csv reads a table: pass --data-file FILE.csv and --target "
                        "COLUMN (the class to predict)")
    if not table.get("target"):
        raise SftcError("--dataset csv needs --target COLUMN: the column holding each row's "
                        "class")
    return table


def _column(frame, name: str, flag: str, path: Path) -> None:
    if name not in frame.columns:
        raise SftcError(f"{flag} {name}: {path} has no such column (its columns: "
                        f"{', '.join(frame.columns)})")


def _labels(frame, target: str, recorded: list | None, path: Path) -> tuple[np.ndarray, list]:
    values = frame[target]
    missing = values.isna().to_numpy()
    if missing.any():
        raise SftcError(f"{path} {line(int(missing.nonzero()[0][0]))}: the target {target!r} "
                        "has no value; give every row its class, or remove the row")
    names = [str(v).strip() for v in values.tolist()]
    classes = list(recorded) if recorded else sorted(set(names))
    where = {c: i for i, c in enumerate(classes)}
    unknown = next((i for i, n in enumerate(names) if n not in where), None)
    if unknown is not None:
        raise SftcError(f"{path} {line(unknown)}: class {names[unknown]!r} of {target!r} is not "
                        f"one the checkpoint was trained for ({', '.join(classes)})")
    if len(classes) < 2:
        raise SftcError(f"--target {target}: every row of {path} has the class {classes[0]!r}; "
                        "a classifier needs at least two classes")
    labels = np.asarray([where[n] for n in names], dtype=np.int64)
    counts = np.bincount(labels, minlength=len(classes))
    few = int(np.argmin(counts))
    if counts[few] < MIN_CLASS_ROWS and not recorded:
        raise SftcError(f"--target {target}: class {classes[few]!r} has {int(counts[few])} "
                        f"row(s), too few to split into train/val/test (each class needs at "
                        f"least {MIN_CLASS_ROWS}); add rows or merge the class")
    return labels, classes


def _ids(frame, column: str | None, path: Path) -> list[str]:
    if column is None:
        return [str(i) for i in range(len(frame))]
    values = frame[column]
    if values.isna().any():
        row = int(values.isna().to_numpy().nonzero()[0][0])
        raise SftcError(f"{path} {line(row)}: --id-column {column} has no value; every row "
                        "needs an id")
    ids = [str(v).strip() for v in values.tolist()]
    seen: dict[str, int] = {}
    for row, sample in enumerate(ids):
        if sample in seen:
            raise SftcError(f"{path} {line(row)}: id {sample!r} of --id-column {column} is "
                            f"repeated (first on {line(seen[sample])}); ids must be unique")
        seen[sample] = row
    return ids


def split_rows(labels: np.ndarray, split_seed: int):
    """Stratified, seeded 60/20/20 positions of train, val and test (each sorted)."""
    from sklearn.model_selection import train_test_split

    order = np.arange(len(labels))
    train, rest = train_test_split(order, test_size=0.4, stratify=labels,
                                   random_state=split_seed)
    val, test = train_test_split(rest, test_size=0.5, stratify=labels[rest],
                                 random_state=split_seed)
    return np.sort(train), np.sort(val), np.sort(test)


def load_table(frame, path: Path, table: dict, split_seed: int, name: str) -> LoadedDataset:
    """The loaded dataset of a table read into ``frame`` (see the module docstring)."""
    recorded = table.get("encoding") or None
    for key in ("target", "id_column", "group_column"):
        if table.get(key):
            _column(frame, table[key], FLAGS[key], path)
    special = [table[k] for k in ("target", "id_column", "group_column") if table.get(k)]
    if len(set(special)) != len(special):
        raise SftcError("--target, --id-column and --group-column must name different columns")
    features = [c for c in frame.columns if c not in special]
    if not features:
        raise SftcError(f"{path} has no column besides --target, --id-column and "
                        "--group-column: nothing to learn from")
    labels, classes = _labels(frame, table["target"], (recorded or {}).get("classes"), path)
    ids = _ids(frame, table.get("id_column"), path)
    train, val, test = split_rows(labels, split_seed)
    if recorded:
        table_encoding.check_columns(recorded, features, str(path))
        encoding = recorded
    else:
        encoding = table_encoding.fit(frame, features, train, str(path), line)
        encoding.update(target=table["target"], classes=classes,
                        id_column=table.get("id_column"), group_column=table.get("group_column"))
    x = table_encoding.apply(encoding, frame, str(path), line)
    data = TableData(torch.from_numpy(x), torch.from_numpy(labels), len(classes), name=name,
                     class_names=classes, ids=ids, table=encoding)
    groups = None
    if table.get("group_column"):
        owner = [str(v).strip() for v in frame[table["group_column"]].tolist()]
        groups = [owner[i] for i in train]
    return LoadedDataset(data, torch.from_numpy(train), torch.from_numpy(val),
                         torch.from_numpy(test), source=str(path),
                         train_names=[ids[i] for i in train],
                         names_where=f"the training rows of {path}",
                         train_groups=groups)


@register_dataset("csv", "your own table: --data-file FILE.csv (or .parquet) --target COLUMN; "
                  "numeric and categorical columns (needs sftc[tables])",
                  default_forget="random:0.1", default_model="resmlp")
def load_csv(data_dir=None, split_seed: int = 0, table: dict | None = None) -> LoadedDataset:
    """A user's table (see the module docstring)."""
    from ..io import expand_user

    table = _options(table)
    path = expand_user(table["file"], "--data-file")
    return load_table(read_table(path), path, table, split_seed, "csv")
