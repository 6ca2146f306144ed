"""The calibration table docs/evidence.md prints, from evidence_calibration.py's outputs.

    python benchmarks/calibration_table.py runs/calibration-digits runs/calibration-fm
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

MODELS = ("do-nothing", "independent original", "oracle", "independent retrain")


def cell(counts: Counter) -> str:
    nf = sum(v for k, v in counts.items() if k.startswith("not-forgotten"))
    return f"{counts.get('forgotten', 0)} / {counts.get('not-proven', 0)} / {nf}"


def main() -> None:
    print("| data | forget sets | " + " | ".join(MODELS) + " |")
    print("|---|---|" + "---|" * len(MODELS))
    for folder in sys.argv[1:]:
        records = [json.loads(line) for line in (Path(folder) / "sets.jsonl").read_text()
                   .splitlines()]
        name = Path(folder).name
        kinds = dict.fromkeys(r["kind"] for r in records)
        for kind in kinds:
            rows = [r for r in records if r["kind"] == kind]
            counts = [Counter(r["result"][m]["verdict"] for r in rows) for m in MODELS]
            print(f"| {name} | {kind} ({len(rows)}) | " + " | ".join(map(cell, counts)) + " |")
        detail = Counter(r["result"][m]["verdict"] for r in records for m in MODELS
                         if r["result"][m]["verdict"].startswith("not-forgotten")
                         and m in ("oracle", "independent retrain"))
        if detail:
            print(f"| {name} | retrained models judged not-forgotten: {dict(detail)} | | | | |")


if __name__ == "__main__":
    main()
