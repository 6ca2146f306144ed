"""The same command, seed, machine and thread count give the same bits, quiet or loaded, first in
a process or later: the engine's speed rule never reads a clock, and measure mode measures before
the run, keeps its decision and bills none of its time to the run (docs/performance.md)."""
import hashlib
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import sftc
from sftc.engine import Accel, measure, numerics_identity

ROOT = Path(__file__).resolve().parent.parent

#: Train an original and unlearn it with SFTC, as a fresh process; print both models' digests.
SCRIPT = """
import hashlib, torch, sftc
torch.set_num_threads(1)
def digest(model):
    h = hashlib.sha256()
    for key, value in model.state_dict().items():
        h.update(key.encode() + value.contiguous().numpy().tobytes())
    return h.hexdigest()
split = sftc.load_split("digits", "random:0.1", seed=0)
original = sftc.train(split, "small-cnn", epochs=1, seed=0, device="cpu", progress=False).model
result = sftc.unlearn(original, split, "sftc", epochs=1, seed=3, device="cpu", progress=False,
                      c=0.3)
print(digest(original), digest(result.model))
"""


def digest(model) -> str:
    h = hashlib.sha256()
    for key, value in model.state_dict().items():
        h.update(key.encode() + value.contiguous().numpy().tobytes())
    return h.hexdigest()


def in_this_process() -> str:
    split = sftc.load_split("digits", "random:0.1", seed=0)
    original = sftc.train(split, "small-cnn", epochs=1, seed=0, device="cpu",
                          progress=False).model
    result = sftc.unlearn(original, split, "sftc", epochs=1, seed=3, device="cpu",
                          progress=False, c=0.3)
    return f"{digest(original)} {digest(result.model)}"


@pytest.mark.slow
def test_the_default_gives_the_same_bits_in_fresh_processes_and_later_in_this_one(monkeypatch):
    monkeypatch.delenv("SFTC_ACCEL", raising=False)
    env = {k: v for k, v in os.environ.items() if k != "SFTC_ACCEL"}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT / "src"))
    runs = [subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = []
    for proc in runs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        outputs.append(out.strip())
    assert outputs[0] == outputs[1]
    assert in_this_process() == outputs[0]   # this process has run other models before


def test_two_runs_in_one_process_are_bitwise_equal(monkeypatch, digits_split):
    monkeypatch.delenv("SFTC_ACCEL", raising=False)
    runs = [sftc.train(digits_split, "small-cnn", epochs=2, seed=5, device="cpu",
                       progress=False) for _ in range(2)]
    assert digest(runs[0].model) == digest(runs[1].model)
    assert [r["loss"] for r in runs[0].history.rows] == [r["loss"] for r in runs[1].history.rows]
    assert runs[0].history.accel["train"]["decided_by"] == "rule"


def test_a_wildly_loaded_clock_changes_nothing(monkeypatch, digits_split, digits_original):
    """The rule reads no clock: a timer returning wild values (a machine under bursts of load)
    gives the same choices and the same bits."""
    monkeypatch.delenv("SFTC_ACCEL", raising=False)

    def run():
        return sftc.unlearn(digits_original.model, digits_split, "sftc", epochs=2, seed=1,
                            device="cpu", progress=False)
    quiet = run()
    wild, real = random.Random(0), time.perf_counter
    monkeypatch.setattr(time, "perf_counter", lambda: real() + wild.uniform(-1e4, 1e4))
    loaded = run()
    assert digest(loaded.model) == digest(quiet.model)
    choices = lambda r: {k: v for k, v in r.history.accel["train"].items()  # noqa: E731
                         if k != "seconds"}
    assert choices(loaded) == choices(quiet)


@pytest.fixture
def slow_trials(monkeypatch):
    """A clock on which every measure-mode trial takes 1000 s (a fake one: nothing sleeps)."""
    offset, real = [0.0], time.perf_counter
    monkeypatch.setattr(time, "perf_counter", lambda: real() + offset[0])
    for name in ("layouts", "optimizer_step", "inference_options"):
        original = getattr(measure, name)

        def slow(*args, _original=original, **kwargs):
            offset[0] += 1000.0
            return _original(*args, **kwargs)
        monkeypatch.setattr(measure, name, slow)
    return offset


@pytest.mark.slow
def test_measure_mode_measures_before_the_run_keeps_the_decision_and_bills_no_trial(
        tmp_path, slow_trials, digits_split, digits_original):
    def run(**accel):
        return sftc.unlearn(digits_original.model, digits_split, "sftc", epochs=2, seed=2,
                            device="cpu", progress=False,
                            accel={"mode": "measure", "decisions_dir": str(tmp_path), **accel})
    first = run()
    train, teacher = first.history.accel["train"], first.history.accel["inference"][0]
    assert train["decided_by"] == "measured" and teacher["decided_by"] == "measured"
    assert set(train["measured"]["step_us_per_sample"]) == {"contiguous", "channels_last"}
    assert "fused" in train["measured"]["optimizer_step_ms"]
    assert "another machine" in train["note"] and Path(train["decision_file"]).is_file()
    # the trials' (fake) 3000 s are recorded apart and billed to nothing
    assert train["seconds"] >= 2000 and teacher["seconds_measuring"] >= 1000
    assert first.history.accel["trial_seconds"] >= 3000
    assert first.history.seconds < 1000 and first.history.setup_seconds < 1000
    assert all(row["seconds"] < 1000 for row in first.history.rows)
    stored = json.loads(Path(train["decision_file"]).read_text())
    assert stored["key"]["threads"] == torch.get_num_threads()
    assert {"architecture", "input", "device_name", "torch"} <= set(stored["key"])
    # a later run takes the same decision from its first step, measures nothing, same bits
    second = run()
    assert second.history.accel["train"]["decided_by"] == "stored"
    assert second.history.accel["inference"][0]["decided_by"] == "stored"
    assert second.history.accel["trial_seconds"] == 0
    for key in ("channels_last", "linear_convs", "fused_optimizer"):
        assert second.history.accel["train"][key] == train[key]
    assert digest(second.model) == digest(first.model)
    # other switches shape another model: another decision
    other = run(exact_rewrites="off")
    assert other.history.accel["train"]["decided_by"] == "measured"
    assert other.history.accel["train"]["decision_file"] != train["decision_file"]


def test_a_short_run_in_measure_mode_takes_the_rule(tmp_path, tiny_split):
    model = sftc.build_model("small-cnn", 1, 4, seed=0)
    result = sftc.unlearn(model, tiny_split, "sftc", epochs=1, device="cpu", progress=False,
                          accel=Accel.measured(tmp_path))   # 2 steps: too short to pay
    train = result.history.accel["train"]
    assert train["decided_by"] == "rule" and "too short" in train["note"]
    assert not list(tmp_path.glob("*.json"))


def test_numerics_identity_names_what_decides_the_bits(tmp_path):
    identity = numerics_identity("cpu")
    assert json.loads(json.dumps(identity)) == identity
    assert identity["device"] == "cpu" and identity["threads"] == torch.get_num_threads()
    assert identity["torch"] == torch.__version__ and identity["accel"]["mode"] == "rule"
    assert {"device_name", "cpu_capability", "deterministic_algorithms"} <= set(identity)
    assert numerics_identity("cpu") == identity
    assert numerics_identity("cpu", Accel.plain()) != identity
    assert numerics_identity("cpu", Accel.measured(tmp_path))["accel"]["decisions_dir"] == \
        str(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(threads + 1)
    try:
        assert numerics_identity("cpu")["threads"] == threads + 1
    finally:
        torch.set_num_threads(threads)
