"""Start-up time of the command line: `sftc --help` and `sftc COMMAND --help`, in fresh processes.

    python benchmarks/startup.py --repeats 10                  # this checkout
    python benchmarks/startup.py --repeats 10 --src OTHER/src  # and another, interleaved

Each measurement is one new `python -m sftc ... --help` process (wall time, process start
included); sources given with --src are timed in turn, round after round, so that load on a
shared machine falls on all of them alike. Prints one JSON line (a table goes to stderr) with the
median, minimum and maximum per source and command, the modules that a `--help` imported
(torch, torchvision, scikit-learn, catboost) and the load average before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1] / "src"
HEAVY = ("torch", "torchvision", "sklearn", "catboost")
PROBE = ("import runpy, sys, json\n"
         "sys.argv = ['sftc'] + sys.argv[1:]\n"
         "try:\n    runpy.run_module('sftc', run_name='__main__')\n"
         "except SystemExit:\n    pass\n"
         f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)), file=sys.stderr)\n")


def run(src: str, argv: list[str]) -> tuple[float, list[str]]:
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], env=env, capture_output=True,
                          text=True)
    seconds = time.perf_counter() - started
    return seconds, json.loads(done.stderr.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", action="append", default=[],
                        help="another sftc source folder to time (repeatable)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--commands", default="unlearn,benchmark",
                        help="commands whose --help is timed besides sftc --help")
    args = parser.parse_args()
    sources = [str(HERE)] + args.src
    cases = [["--help"]] + [[c, "--help"] for c in args.commands.split(",") if c]
    times = {(s, " ".join(c)): [] for s in sources for c in cases}
    heavy = {}
    load_before = os.getloadavg()
    for _ in range(args.repeats):
        for case in cases:
            for src in sources:
                seconds, imported = run(src, case)
                times[(src, " ".join(case))].append(seconds)
                heavy[(src, " ".join(case))] = imported
    result = {"repeats": args.repeats, "load_before": load_before, "load_after": os.getloadavg(),
              "python": sys.version.split()[0], "runs": []}
    for (src, case), values in times.items():
        result["runs"].append({"src": src, "argv": f"sftc {case}",
                               "median_s": round(statistics.median(values), 3),
                               "min_s": round(min(values), 3), "max_s": round(max(values), 3),
                               "heavy_imports": heavy[(src, case)]})
        print(f"{src:>40}  sftc {case:<18} median {statistics.median(values):6.3f} s  "
              f"min {min(values):6.3f}  max {max(values):6.3f}  imports {heavy[(src, case)]}",
              file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
