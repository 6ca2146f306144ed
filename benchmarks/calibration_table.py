"""The calibration tables docs/evidence.md prints, from evidence_calibration.py's outputs.

    python benchmarks/calibration_table.py runs/calibration-digits runs/calibration-fm

For each folder and kind of forget set, two tables:

1. **Verdicts** per model (forgotten / not-proven / nothing-detectable / not-forgotten), counts.
2. **Rates** against the rule's promises: of the fresh retrains (oracle and two independent
   retrains; none of them a reference), the share inside the band (the band's coverage: 90 %
   nominal), the share certified where the set has the power (the original shown and the asked
   resolution met; for a class, every set: the class test decides; goal ≥ 90 %), and the share called not-forgotten (≤ α = 5 % nominal); the
   originals (seed 0 and an independent seed) certified (goal: 0); the half keepers certified
   (goal ≤ 10 %); the sets with power, and the median band half-width and references' spread.
"""
from __future__ import annotations

import json
import statistics
import sys
from collections import Counter
from pathlib import Path

RETRAINS = ("oracle", "independent retrain", "independent retrain 2")
ORIGINALS = ("do-nothing", "independent original")
HALF = "half keeper"
COLUMNS = ("forgotten", "not-proven", "nothing-detectable", "not-forgotten")


def load(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "sets.jsonl").read_text().splitlines()]


def short(verdict: str) -> str:
    return "not-forgotten" if verdict.startswith("not-forgotten") else verdict


def has_power(record: dict) -> bool:
    r = record["result"]["do-nothing"]
    return bool(r.get("power_shown")) and (r.get("resolution") or 0.0) >= 0.5


def share(hits: int, n: int) -> str:
    return f"{hits}/{n} ({hits / n:.0%})" if n else "—"


def verdict_rows(name: str, records: list[dict]) -> list[str]:
    models = [m for m in (*ORIGINALS, *RETRAINS, HALF) if m in records[0]["result"]]
    lines = []
    for kind in dict.fromkeys(r["kind"] for r in records):
        rows = [r for r in records if r["kind"] == kind]
        for m in models:
            counts = Counter(short(r["result"][m]["verdict"]) for r in rows)
            lines.append(f"| {name} | {kind} ({len(rows)}) | {m} | "
                         + " | ".join(str(counts.get(c, 0)) for c in COLUMNS) + " |")
    return lines


def rate_rows(name: str, records: list[dict]) -> list[str]:
    lines = []
    for kind in dict.fromkeys(r["kind"] for r in records):
        rows = [r for r in records if r["kind"] == kind]
        retrains = [r["result"][m] for r in rows for m in RETRAINS if m in r["result"]]
        # a class is decided by the class test, which has its own power: every set counts
        powered = [r["result"][m] for r in rows if kind == "class" or has_power(r)
                   for m in RETRAINS if m in r["result"]]
        inside = sum(abs(x["auc"] - x["level"]) <= x["certify"] for x in retrains)
        certified = sum(x["verdict"] == "forgotten" for x in powered)
        refuted = sum(x["verdict"].startswith("not-forgotten") for x in retrains)
        originals = [r["result"][m] for r in rows for m in ORIGINALS]
        orig_cert = sum(x["verdict"] == "forgotten" for x in originals)
        halves = [r["result"][HALF] for r in rows if HALF in r["result"]]
        half_cert = sum(x["verdict"] == "forgotten" for x in halves)
        width = statistics.median(r["result"]["oracle"]["certify"] for r in rows)
        size = statistics.median(r["result"]["size"] for r in rows)
        lines.append(f"| {name} | {kind} | {size:.0f} | {share(sum(map(has_power, rows)), len(rows))} "
                     f"| {share(inside, len(retrains))} | {share(certified, len(powered))} | "
                     f"{share(refuted, len(retrains))} | {share(orig_cert, len(originals))} | "
                     f"{share(half_cert, len(halves))} | ±{width:.3f} |")
    return lines


def main(folders: list[str]) -> None:
    loaded = [(Path(f).name, load(Path(f))) for f in folders]
    print("| data | forget sets | model | " + " | ".join(COLUMNS) + " |")
    print("|---|---|---|" + "---:|" * len(COLUMNS))
    for name, records in loaded:
        print("\n".join(verdict_rows(name, records)))
    print()
    print("| data | kind | samples | sets with power | retrains inside the band | retrains "
          "certified (sets with power; class: all) | retrains not-forgotten | originals certified | half "
          "keepers certified | band (median) |")
    print("|---|---|---:|---|---|---|---|---|---|---:|")
    for name, records in loaded:
        print("\n".join(rate_rows(name, records)))


if __name__ == "__main__":
    main(sys.argv[1:])
