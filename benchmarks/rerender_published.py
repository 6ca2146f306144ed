"""Render the published benchmarks' tables again from their table1.json (docs/results/*/).

After a change of how tables are drawn (the marking rule, a column), the published table1.md,
.csv, .json, .tex and the "## Results" section of report.md are rewritten from the data each
table1.json holds; no number is recomputed.

    python benchmarks/rerender_published.py docs/results/digits docs/results/fashion-mnist ...
"""
from __future__ import annotations

import sys
from pathlib import Path

from sftc.io import atomic_write_text
from sftc.report.benchmark import write_files
from sftc.report.table1 import table1_files_from_json


def rerender(folder: Path) -> None:
    files = table1_files_from_json(folder / "table1.json")
    write_files(folder, files)
    report = folder / "report.md"
    if report.is_file():
        text = report.read_text()
        head, sep, rest = text.partition("## Results\n\n")
        _, sep2, tail = rest.partition("## Convergence")
        if sep and sep2:
            body = files["table1.md"].split("\n", 1)[1].lstrip()
            atomic_write_text(report, head + sep + body + "\n\n" + sep2 + tail)
    print(f"rendered {folder}")


if __name__ == "__main__":
    for name in sys.argv[1:]:
        rerender(Path(name))
