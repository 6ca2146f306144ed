"""The operator's walk-through of docs/operations.md, timed: own PNGs from a deployed checkpoint to
the fifth deletion request, with `sftc deploy`.

    OMP_NUM_THREADS=1 python benchmarks/deploy_walkthrough.py --out /tmp/walkthrough

It writes an image folder (4 classes of 16x16 RGB PNGs; each training image belongs to one of 20
"users", whose images share a personal texture, so a request is a group of similar images, not
a random sample), trains the original with `sftc train`, then runs every command of the guide
(`deploy init`; five `deploy forget` requests of one user's 40 images each under `--require
not-refuted`, the first also under the default `forgotten`; a refused request retried with
`--max-accuracy-drop 0.1`, then with `--method retrain --epochs 30`; the files of a published
request deleted once the next one is published, so that it is re-audited once; `deploy verify`,
`deploy status`) as a new process, and prints each command's wall time (Python start-up
included), its last lines, and the load.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("circle", "cross", "stripes", "square")


def class_pattern(c: int, side: int) -> np.ndarray:
    y, x = np.mgrid[0:side, 0:side] / (side - 1) - 0.5
    shapes = [(x ** 2 + y ** 2 < 0.12), (np.abs(x) < 0.1) | (np.abs(y) < 0.1),
              (np.sin(12 * x) > 0), (np.maximum(np.abs(x), np.abs(y)) < 0.3)]
    return shapes[c].astype(np.float64)


def write_images(root: Path, users: int, per_class: int, held_out: int, side: int,
                 seed: int = 0) -> dict:
    """train/<class>/userNN-KK.png (``per_class`` images per user and class), val/ and test/
    (``held_out`` per class, from people not in train)."""
    rng = np.random.default_rng(seed)
    people = rng.normal(0, 1, (users + 2 * held_out, side, side, 3))
    colours = rng.uniform(0.2, 1.0, (len(CLASSES), 3))

    def image(c: int, person: int) -> np.ndarray:
        shape = class_pattern(c, side)[..., None] * colours[c]
        pixels = 0.2 * shape + 0.2 * people[person] + rng.normal(0, 0.35, (side, side, 3))
        return (np.clip(pixels + 0.2, 0, 1) * 255).astype(np.uint8)

    for c, name in enumerate(CLASSES):
        for part in ("train", "val", "test"):
            (root / part / name).mkdir(parents=True, exist_ok=True)
        for u in range(users):
            for k in range(per_class):
                path = root / "train" / name / f"user{u:02d}-{k:02d}.png"
                Image.fromarray(image(c, u)).save(path)
        for k in range(held_out):
            Image.fromarray(image(c, users + k)).save(root / "val" / name / f"v{k:03d}.png")
            Image.fromarray(image(c, users + held_out + k)).save(root / "test" / name /
                                                                 f"t{k:03d}.png")
    return {"users": users, "train": users * per_class * len(CLASSES)}


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def sftc(args: list[str], log: list, label: str) -> subprocess.CompletedProcess:
    started, before = time.perf_counter(), load()
    done = subprocess.run([sys.executable, "-m", "sftc", *args], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    tail = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    log.append({"step": label, "command": "sftc " + " ".join(args), "seconds": seconds,
                "exit": done.returncode, "load_before": before, "load_after": load(),
                "output": tail})
    print(f"\n$ sftc {' '.join(args)}   # {seconds:.0f} s, exit {done.returncode}, load "
          f"{before} -> {load()}")
    for line in tail[-14:]:
        print(f"  {line}")
    return done


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--per-class", type=int, default=10)
    p.add_argument("--held-out", type=int, default=40)
    p.add_argument("--side", type=int, default=16)
    p.add_argument("--extra", default="", help="options added to every deploy forget")
    args = p.parse_args()
    out = Path(args.out).resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    os.chdir(out)                       # every path below is relative, as in docs/operations.md
    out, pngs, deploy = Path("."), Path("pngs"), Path("deploy")
    os.environ["SFTC_CACHE_DIR"] = str(Path("cache").resolve())
    facts = write_images(pngs, args.users, args.per_class, args.held_out, args.side)
    print(f"{facts['train']} training images of {args.users} users in {pngs}; load {load()}")
    log: list = []
    extra = args.extra.split()
    sftc(["train", "--dataset", "imagefolder", "--data-dir", "pngs", "--quiet", "--out",
          "original"], log, "train the original (the deployed checkpoint)")
    # --keep all: the guide keeps every version so that each request is re-audited on the next
    # ones (the default, --keep published, prunes the versions that still hold removed samples)
    sftc(["deploy", "init", "--dir", "deploy", "--dataset", "imagefolder", "--data-dir", "pngs",
          "--checkpoint", "original/model.pt", "--keep", "all"], log, "deploy init")
    done: list[list[str]] = []          # the files of each published request
    for n, user in enumerate((7, 3, 12, 5, 16), 1):
        request = Path(f"user{user:02d}.txt")
        names = sorted(f"{c}/user{user:02d}-{k:02d}.png" for c in CLASSES
                       for k in range(args.per_class))
        request.write_text("\n".join(names) + "\n")
        forget = ["deploy", "forget", "--dir", "deploy", "--request", str(request), "--id",
                  f"user{user:02d}", "--quiet", *extra]
        label = f"request {n} (user{user:02d})"
        if n == 1:
            sftc(forget, log, f"{label}, --require forgotten (the default)")
        code = sftc([*forget, "--require", "not-refuted"], log,
                    f"{label}, --require not-refuted").returncode
        if code == 3:                   # refused: a retry with a wider accuracy budget,
            code = sftc([*forget, "--require", "not-refuted", "--max-accuracy-drop", "0.1"], log,
                        f"{label}, again with --max-accuracy-drop 0.1").returncode
        if code == 3:                   # then retraining on the retain set
            code = sftc([*forget, "--require", "not-refuted", "--method", "retrain", "--epochs",
                         "30"], log, f"{label}, again with --method retrain --epochs 30").returncode
        if code != 0:
            continue                    # not published: its files must stay
        if done:                        # the previous request's files: deleted now (it was
            for name in done[-1]:       # re-audited once on this version)
                (pngs / "train" / name).unlink()
        done.append(names)
    for name in done[-1] if done else ():
        (pngs / "train" / name).unlink()
    sftc(["deploy", "verify", "--dir", "deploy"], log, "deploy verify")
    sftc(["deploy", "status", "--dir", "deploy"], log, "deploy status")
    Path("walkthrough.json").write_text(json.dumps(log, indent=2) + "\n")
    print("\n| step | wall time (s) | exit | load before -> after |\n|---|---|---|---|")
    for row in log:
        print(f"| {row['step']} | {row['seconds']:.0f} | {row['exit']} | {row['load_before']} "
              f"-> {row['load_after']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
