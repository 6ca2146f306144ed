"""The per-example attack at every candidate of a finished benchmark's grid, not only the kept one.

The benchmark keeps, per method, the (learning rate, epoch) with the lowest Eq. 5 + 6 + 7: an
accuracy rule. With attack references, every evaluated model's logits on D_f, D_t and the
population are stored, so RMIA's AUC and TPR@1% can be computed for every candidate afterwards
from the same references, training nothing. This shows what the accuracy rule chose *against*:
whether a method can bring its forget set to where the attack cannot tell it from never-seen
data at some setting of the grid, and what that costs in test accuracy.

    python benchmarks/attack_over_grid.py OUT            # OUT: a benchmark's --out
    python benchmarks/attack_over_grid.py OUT --csv grid-attack.csv

Prints one line per method: the kept setting, the setting of the grid whose mean RMIA AUC is
closest to 0.5, and the one closest to 0.5 among those whose mean test accuracy is within one
point of the original's, each with its accuracies and Eq. 5 + 6 + 7 (mean over seeds); writes
every candidate to the CSV. (An analysis of the grid, not a selection rule of the benchmark.)
Needs the reference cache the benchmark used (SFTC_CACHE_DIR or --cache-dir).
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path

from sftc.bench.attack_columns import AttackColumns
from sftc.bench.config import BenchmarkConfig, method_key, method_label, number_text
from sftc.bench.split import make_split
from sftc.bench.store import Store


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--csv", default=None)
    p.add_argument("--cache-dir", default=None)
    args = p.parse_args()
    out = Path(args.out)
    stored = json.loads((out / "benchmark.json").read_text())["config"]
    config = BenchmarkConfig(**{k: tuple(v) if isinstance(v, list) and k != "methods" else v
                                for k, v in stored.items() if k != "methods"})
    config.methods = tuple((m["name"], m["hparams"]) for m in stored["methods"])
    config.validate()
    if not config.attack_references:
        raise SystemExit("this benchmark ran without attack references")
    split = make_split(config)
    attack = AttackColumns(config, split, args.cache_dir, device_name="cpu")
    attack.prepare(None)
    table_rows = json.loads((out / "table1.json").read_text())["rows"]
    kept = {r["key"]: (r.get("lr"), r.get("epoch")) for r in table_rows}
    floor = next(r["acc_test"] for r in table_rows if r["label"] == "ORI") - 0.01
    lines = []
    for name, hp in config.methods:
        mkey = method_key(name, hp)
        cells = {}
        for lr in config.lrs:
            for seed in config.seeds:
                run = out / "runs" / mkey / f"lr-{number_text(lr)}" / f"seed-{seed}"
                result = Store.read_json(run / "result.json")
                if result is None:
                    continue
                logits = Store.load_logits(run / "logits.pt")
                for row in result["rows"]:
                    if row["epoch"] < 1 or row["epoch"] not in logits:
                        continue
                    figures = attack.metrics(logits[row["epoch"]])
                    cells.setdefault((lr, row["epoch"]), []).append({**row, **figures})
        for (lr, epoch), group in sorted(cells.items()):
            if len(group) != len(config.seeds):
                continue
            mean = {k: statistics.fmean(g[k] for g in group if g.get(k) is not None)
                    for k in ("acc_forget", "acc_test", "score", "rmia_auc", "rmia_tpr")
                    if any(g.get(k) is not None for g in group)}
            lines.append({"method": method_label(name, hp), "lr": lr, "epoch": epoch,
                          "kept": kept.get(mkey) == (lr, epoch), **mean})
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(lines[0]))
            writer.writeheader()
            writer.writerows(lines)
    print("| Method | setting | lr, epochs | RMIA AUC | Acc forget | Acc test | Eq.5+6+7 |")
    print("|---|---|---|---:|---:|---:|---:|")
    for label in dict.fromkeys(line["method"] for line in lines):
        mine = [line for line in lines if line["method"] == label]
        closest = lambda group: min(  # noqa: E731
            group, key=lambda line: (abs(line["rmia_auc"] - 0.5), line["epoch"], line["lr"]),
            default=None)
        picks = (("kept (Eq. 5+6+7)", next((line for line in mine if line["kept"]), None)),
                 ("AUC closest to 0.5", closest(mine)),
                 (f"closest to 0.5, test ≥ {floor:.4f}",
                  closest([line for line in mine if line["acc_test"] >= floor])))
        for what, line in picks:
            if line is None:
                print(f"| {label} | {what} | none | | | | |")
                continue
            print(f"| {label} | {what} | {line['lr']:g}, {line['epoch']} | "
                  f"{line['rmia_auc']:.3f} | {line['acc_forget']:.4f} | {line['acc_test']:.4f} | "
                  f"{line['score']:.4f} |")


if __name__ == "__main__":
    main()
