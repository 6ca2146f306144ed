"""Project a paper-scale Table 1 onto 1, 8 and 32 ranks from measured per-unit costs
(docs/scaling.md).

    python benchmarks/scaling_projection.py --summary /tmp/grid-ranks/summary.json \\
        --samples-per-second 2000 [--ranks 1,8,32]

The relative cost of each kind of unit comes from a measured single-process benchmark
(``benchmarks/grid_ranks.py``'s ``summary.json``): an original, an oracle and each method's grid
run, in *epochs of the original's training* (the original's seconds / its epochs). The paper's
protocol (Section 5: 5 seeds, 23 learning rates, 7 methods, runs of up to 4 epochs, 30-epoch
originals and oracles, three datasets) then gives every unit's cost in sample passes, and an
assumed training throughput per GPU (``--samples-per-second``, NOT measured here: no GPU was
lent) turns them into seconds. Each phase's units are split over the ranks exactly as
``sftc.bench.ranks`` splits them (position ``i % ranks``), the phase's wall time is its busiest
rank's load, and the phases follow each other (a barrier between them). The final JS/MIA
evaluations run on CPUs and are given separately (``--final-seconds``, per evaluation).

Prints a row per dataset and the totals; the assumptions are printed with them.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

# Section 5 of the paper: training-set sizes at 128x128 (docs/datasets.md), 5 seeds, the 23
# learning rates 5e-3 ... 1e-5, 7 methods (FT, NG+, CF-k, EU-k, BD, SCRUB, SFTC), 30 epochs.
DATASETS = {"cifar10": 50_000, "fer2013": 28_709, "mufac": 10_025}
SEEDS, LRS, TRAIN_EPOCHS = 5, 23, 30
METHOD_ORDER = ("ft", "neggrad+", "cf-k", "eu-k", "bad-teaching", "scrub", "sftc")


def relative_costs(summary: dict, train_epochs: int) -> dict[str, float]:
    """Each unit's cost in epochs of the original's training, from one process's measurements."""
    run = summary["runs"]["1"]
    epoch = run["reference_seconds"]["original"]["mean"] / train_epochs
    costs = {"original": float(train_epochs),
             "oracle": run["reference_seconds"]["oracle"]["mean"] / epoch}
    for method, figures in run["grid_seconds"].items():
        costs[method] = figures["mean"] / epoch
    return costs


def phase_wall(costs: list[float], ranks: int) -> float:
    """The busiest rank's load when unit ``i`` goes to rank ``i % ranks``."""
    return max(sum(costs[r::ranks]) for r in range(ranks)) if costs else 0.0


def project(samples: int, rel: dict[str, float], per_sample: float, ranks: int,
            final_seconds: float, rows: int) -> dict:
    unit = samples * per_sample   # seconds of one epoch of the original's training
    references = [rel[role] * unit for _ in range(SEEDS) for role in ("original", "oracle")]
    grid = [rel[m] * unit for _ in range(SEEDS) for m in METHOD_ORDER for _ in range(LRS)]
    final = [final_seconds] * (rows * SEEDS)
    walls = [phase_wall(p, ranks) for p in (references, grid, final)]
    gpu_work = sum(references) + sum(grid)
    return {"gpu_hours": gpu_work / 3600, "wall_hours": sum(walls) / 3600,
            "phase_hours": [w / 3600 for w in walls],
            "efficiency": (gpu_work + sum(final)) / (ranks * sum(walls))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", required=True, help="grid_ranks.py's summary.json")
    parser.add_argument("--samples-per-second", type=float, required=True,
                        help="assumed training throughput of one GPU at 128x128 (not measured)")
    parser.add_argument("--ranks", default="1,8,32")
    parser.add_argument("--train-epochs", type=int, default=30,
                        help="epochs of the measured preset's original (digits: 30)")
    parser.add_argument("--final-seconds", type=float, default=60.0,
                        help="seconds of one final JS+MIA evaluation (CPU)")
    args = parser.parse_args()
    summary = json.loads(Path(args.summary).read_text())
    rel = relative_costs(summary, args.train_epochs)
    missing = [m for m in METHOD_ORDER if m not in rel]
    if missing:
        raise SystemExit(f"the summary has no grid runs of {', '.join(missing)}")
    rows = len(METHOD_ORDER) + 2   # the methods, ORI and RT
    per_sample = 1.0 / args.samples_per_second
    print("relative unit costs (epochs of the original's training, measured): "
          + ", ".join(f"{k} {v:.2f}" for k, v in rel.items()))
    print(f"assumed: {args.samples_per_second:g} training samples/s per GPU; "
          f"{args.final_seconds:g} s per final evaluation")
    ranks = [int(r) for r in args.ranks.split(",")]
    header = f"{'dataset':<9} {'GPU-h':>7} " + " ".join(
        f"{f'{r} rank(s): wall h (eff.)':>26}" for r in ranks)
    print(header)
    totals = {r: 0.0 for r in ranks}
    gpu_total = 0.0
    for name, samples in DATASETS.items():
        cells = []
        for r in ranks:
            p = project(samples, rel, per_sample, r, args.final_seconds, rows)
            totals[r] += p["wall_hours"]
            cells.append(f"{p['wall_hours']:>15.2f} ({p['efficiency']:.0%})")
        gpu_total += p["gpu_hours"]
        print(f"{name:<9} {p['gpu_hours']:>7.1f} " + " ".join(f"{c:>26}" for c in cells))
    print(f"{'all three':<9} {gpu_total:>7.1f} "
          + " ".join(f"{totals[r]:>26.2f}" for r in ranks))
    print(f"(one model; the paper runs two, ResNet-18 and EfficientNet-B0: about twice this. "
          f"Grid units per dataset: {SEEDS * len(METHOD_ORDER) * LRS}, references "
          f"{2 * SEEDS}, final evaluations {rows * SEEDS}; {math.ceil(2 * SEEDS / 8)} waves of "
          "references on 8 ranks.)")


if __name__ == "__main__":
    main()
