"""A table's preprocessing: fitted on the training rows only, recorded, applied identically.

Numeric columns are standardised with the training rows' mean and standard deviation; a
categorical column (text) is one-hot encoded over the categories its training rows hold (a
category first seen outside them encodes as all zeros); a missing categorical value is its own
category, ``<missing>``. A missing numeric value is refused in one line naming the column and
the line: imputing it would invent data for a sample a deletion request may later name.

The encoding is a plain dict (:func:`fit`), written into ``run.json`` (``trained_on.
preprocessing.table``) and given back to :func:`apply` by every later command, which refuses a
table whose columns differ from it, naming the column.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import SftcError

FORMAT = "sftc-table/1"
MISSING = "<missing>"
#: A text column with more distinct training values than this (and than half its rows) is an
#: id, not a category.
MAX_CATEGORIES = 100


def is_numeric(series) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def numeric_junk(series, where) -> tuple[int, str] | None:
    """(row, value) of the first entry of a mostly numeric text column that is no number."""
    import pandas as pd

    present = series.dropna()
    if present.empty:
        return None
    parsed = pd.to_numeric(present, errors="coerce")
    bad = parsed.isna()
    if bad.any() and bad.mean() < 0.5:
        row = bad[bad].index[0]
        return int(row), str(present[row])
    return None


def fit(frame, features: list[str], train_rows: np.ndarray, source: str, line) -> dict:
    """The encoding of ``features`` fitted on ``frame``'s rows ``train_rows`` (positions);
    ``line(row)`` names a row of the file for messages."""
    train = frame.iloc[train_rows]
    columns = []
    for name in features:
        series = frame[name]
        if is_numeric(series):
            _refuse_missing(series, name, source, line)
            values = train[name].to_numpy(dtype=np.float64)
            std = float(values.std()) if len(values) else 1.0
            columns.append({"name": name, "kind": "numeric", "mean": float(values.mean()),
                            "std": std if std > 1e-12 else 1.0})
            continue
        junk = numeric_junk(series, source)
        if junk is not None:
            raise SftcError(f"{source} {line(junk[0])}: column {name!r} holds numbers, but this "
                            f"row has {junk[1]!r}; fix or blank the value, or remove the row")
        categories = sorted({_category(v) for v in train[name].tolist()})
        if len(categories) > MAX_CATEGORIES and len(categories) > len(train) // 2:
            raise SftcError(f"{source}: column {name!r} has {len(categories):,} distinct values "
                            f"in {len(train):,} training rows: an id, not a category; pass "
                            f"--id-column {name}, or remove the column")
        columns.append({"name": name, "kind": "categorical", "categories": categories})
    return {"format": FORMAT, "columns": columns, "width": width({"columns": columns})}


def width(encoding: dict) -> int:
    """The number of features a row encodes to."""
    return sum(1 if c["kind"] == "numeric" else len(c["categories"])
               for c in encoding["columns"])


def feature_names(encoding: dict) -> list[str]:
    """One name per encoded feature: ``carat``, ``cut=Ideal``."""
    names = []
    for c in encoding["columns"]:
        names += [c["name"]] if c["kind"] == "numeric" else \
            [f"{c['name']}={v}" for v in c["categories"]]
    return names


def check_columns(encoding: dict, features: list[str], source: str) -> None:
    """``features`` (the table's columns besides target, id and group) must be the encoding's."""
    recorded = [c["name"] for c in encoding["columns"]]
    missing = [c for c in recorded if c not in features]
    if missing:
        raise SftcError(f"{source} has no column {missing[0]!r}, which the checkpoint was "
                        "trained with (recorded in its run.json); give the table it was trained "
                        "on")
    extra = [c for c in features if c not in recorded]
    if extra:
        raise SftcError(f"{source} has a column {extra[0]!r} the checkpoint was not trained with "
                        f"(it knows {', '.join(recorded)}); remove it, or train a new model")


def apply(encoding: dict, frame, source: str, line) -> np.ndarray:
    """Every row of ``frame`` encoded as ``encoding`` says: float32 ``[rows, width]``."""
    out = np.zeros((len(frame), width(encoding)), dtype=np.float32)
    at = 0
    for column in encoding["columns"]:
        name = column["name"]
        series = frame[name]
        if column["kind"] == "numeric":
            if not is_numeric(series):
                import pandas as pd

                parsed = pd.to_numeric(series, errors="coerce")
                row = int((parsed.isna() & series.notna()).to_numpy().nonzero()[0][0]) \
                    if (parsed.isna() & series.notna()).any() else None
                if row is not None:
                    raise SftcError(f"{source} {line(row)}: column {name!r} holds numbers, but "
                                    f"this row has {series.iloc[row]!r}; fix or blank the value, "
                                    "or remove the row")
                series = parsed
            _refuse_missing(series, name, source, line)
            values = series.to_numpy(dtype=np.float64)
            out[:, at] = (values - column["mean"]) / column["std"]
            at += 1
            continue
        where = {v: i for i, v in enumerate(column["categories"])}
        for row, value in enumerate(series.tolist()):
            i = where.get(_category(value))
            if i is not None:
                out[row, at + i] = 1.0
        at += len(column["categories"])
    return out


def _category(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return str(value).strip()


def _refuse_missing(series, name: str, source: str, line) -> None:
    missing = series.isna().to_numpy()
    if missing.any():
        row = int(missing.nonzero()[0][0])
        raise SftcError(f"{source} {line(row)}: numeric column {name!r} has no value "
                        f"({int(missing.sum())} such rows); fill them in or remove those rows "
                        "(sftc does not invent values)")
    values = series.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        row = int((~np.isfinite(values)).nonzero()[0][0])
        raise SftcError(f"{source} {line(row)}: numeric column {name!r} holds {values[row]}; "
                        "give a finite number")
