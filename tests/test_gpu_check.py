"""benchmarks/gpu_check.sh end to end on the CPU, CI-sized (--device cpu --tiny): the tests step
and every figure run and print their JSON lines. No figure's value is checked (speed is measured,
never asserted); that each is there, without an error, is."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIGURES = {"tests", "device", "sftc_vs_ft", "bf16_speed", "vs_authors", "reference_pool",
           "bf16_results", "gpu_check"}


@pytest.mark.slow
def test_the_gpu_check_runs_end_to_end_on_the_cpu(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", "OUT": str(tmp_path),
           "GPU_CHECK_TESTS": "tests/test_cuda.py::"
                              "test_the_pool_batches_by_the_devices_rule_and_trains_whole_groups"}
    done = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--device", "cpu", "--tiny"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert {r["figure"] for r in rows} == FIGURES
    assert not [r for r in rows if "error" in r]
    assert next(r for r in rows if r["figure"] == "tests")["summary"].startswith("1 passed")
    assert {r["model"] for r in rows if r["figure"] == "sftc_vs_ft"} == {"small-cnn", "resnet18"}
    pool = next(r for r in rows if r["figure"] == "reference_pool")
    assert pool["group_used"] == 2 and pool["default_group_here"] == 1
    assert (tmp_path / "gpu_check.jsonl").read_text().splitlines() == done.stdout.splitlines()
