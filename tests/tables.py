"""Small generated tables for the table tests (numeric and categorical columns, ids, owners)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

HEADER = ["cid", "owner", "age", "income", "city", "label"]


def table_rows(n: int = 120, seed: int = 0) -> list[list]:
    """Rows whose class depends on age and city (learnable), with noise in income."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        age = int(rng.integers(18, 80))
        city = str(rng.choice(["paris", "rome", "oslo"]))
        label = "yes" if (age > 45) ^ (city == "oslo") else "no"
        rows.append([f"c{i:03d}", f"o{i % 6}", age, round(float(rng.normal(50, 15)), 2), city,
                     label])
    return rows


def write_table(path: Path, rows=None, header=HEADER) -> Path:
    path = Path(path)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(table_rows() if rows is None else rows)
    return path


def table_args(path: Path, *extra) -> list[str]:
    return ["--dataset", "csv", "--data-file", str(path), *extra]


#: The options of a first command on the generated table.
def first_args(path: Path) -> list[str]:
    return table_args(path, "--target", "label", "--id-column", "cid", "--group-column", "owner")


def cli(capsys, *argv):
    """Run the command line; its exit status and stderr (never a traceback)."""
    from sftc.cli import main

    capsys.readouterr()
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err, err
    return code, err
