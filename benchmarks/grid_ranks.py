"""Wall time of a benchmark preset's whole grid with 1 process and with N torchrun ranks, and the
measured cost of each kind of unit (docs/scaling.md).

    OMP_NUM_THREADS=1 python benchmarks/grid_ranks.py --preset digits --ranks 1,2 \\
        --root /tmp/grid-ranks [-- extra sftc benchmark options]

For each rank count: a fresh output directory and a fresh reference cache (so the original and
oracle models are trained in every run), ``sftc benchmark --preset P`` as one process or under
``python -m torch.distributed.run --nproc-per-node N``, timed from start to exit. Afterwards, from
the files the runs wrote: each reference model's training seconds (cache ``meta.json``), each grid
run's wall seconds (``result.json``), and the rest of the wall time (start-up, the per-seed
records, the final JS/MIA evaluations, the tables), and whether the tables agree. Prints one JSON
object and writes it to ROOT/summary.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

TIMES = ("unlearn_seconds", "retrain_seconds", "time_ratio")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(ranks: int, preset: str, out: Path, cache: Path, extra: list[str]) -> list[str]:
    sftc = ["-m", "sftc", "benchmark", "--preset", preset, "--out", str(out), "--cache-dir",
            str(cache), "--quiet", *extra]
    if ranks == 1:
        return [sys.executable, *sftc]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(ranks),
            "--master-port", str(free_port()), *sftc]


def unit_costs(out: Path, cache: Path) -> dict:
    refs = defaultdict(list)
    for meta in cache.glob("*/meta.json"):
        record = json.loads(meta.read_text())
        refs[record["inputs"]["subset"]].append(record["seconds"])
    runs = defaultdict(list)
    for result in out.glob("runs/*/*/*/result.json"):
        record = json.loads(result.read_text())
        runs[record["method"]].append(record["wall_seconds"])
    summary = {
        "reference_seconds": {("original" if k == "train" else "oracle"): {
            "count": len(v), "mean": round(statistics.fmean(v), 2), "sum": round(sum(v), 1)}
            for k, v in refs.items()},
        "grid_seconds": {k: {"count": len(v), "mean": round(statistics.fmean(v), 2),
                             "sum": round(sum(v), 1)} for k, v in sorted(runs.items())}}
    summary["reference_sum"] = round(sum(sum(v) for v in refs.values()), 1)
    summary["grid_sum"] = round(sum(sum(v) for v in runs.values()), 1)
    return summary


def table(out: Path) -> list[dict]:
    rows = json.loads((out / "table1.json").read_text())["rows"]
    return [{k: v for k, v in row.items() if not k.startswith(TIMES)} for row in rows]


def largest_gap(a: list[dict], b: list[dict]) -> float:
    gap = 0.0
    for x, y in zip(a, b):
        for key, value in x.items():
            other = y.get(key)
            if isinstance(value, (int, float)) and isinstance(other, (int, float)):
                gap = max(gap, abs(value - other))
            elif value != other:
                return float("inf")
    return gap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="digits")
    parser.add_argument("--ranks", default="1,2", help="comma-separated rank counts")
    parser.add_argument("--root", default="/tmp/grid-ranks")
    parser.add_argument("extra", nargs="*", help="after --: options for sftc benchmark")
    args = parser.parse_args()
    root = Path(args.root)
    env = {**os.environ}
    env.setdefault("OMP_NUM_THREADS", "1")
    report = {"preset": args.preset, "extra": args.extra, "cpu_count": os.cpu_count(),
              "OMP_NUM_THREADS": env["OMP_NUM_THREADS"], "runs": {}}
    for ranks in (int(r) for r in args.ranks.split(",")):
        out, cache = root / f"ranks-{ranks}", root / f"cache-{ranks}"
        for path in (out, cache):
            shutil.rmtree(path, ignore_errors=True)
        argv = command(ranks, args.preset, out, cache, args.extra)
        load_before = os.getloadavg()
        started = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        costs = unit_costs(out, cache)
        report["runs"][ranks] = {
            "command": " ".join(argv[1:]), "wall_seconds": round(wall, 1),
            "load_average_1min_before": round(load_before[0], 2),
            "load_average_1min_after": round(os.getloadavg()[0], 2),
            "rest_seconds": round(wall - costs["reference_sum"] / ranks
                                  - costs["grid_sum"] / ranks, 1), **costs}
        print(f"{ranks} rank(s): {wall:.0f} s", file=sys.stderr, flush=True)
    counts = sorted(report["runs"])
    base = report["runs"][counts[0]]["wall_seconds"]
    for ranks in counts:
        report["runs"][ranks]["speedup"] = round(base / report["runs"][ranks]["wall_seconds"], 2)
        gap = largest_gap(table(root / f"ranks-{counts[0]}"), table(root / f"ranks-{ranks}"))
        report["runs"][ranks]["table_largest_difference"] = gap
    (root / "summary.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
