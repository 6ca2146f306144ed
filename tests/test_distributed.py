"""torch.distributed under torchrun, on this CPU with Gloo (NCCL needs GPUs and is not run here).

* a data-parallel run with 2 and with 3 processes computes what one process computes with the
  same global batch, for every registered method (tests/distributed_worker.py);
* the start-up agreement stops every rank in one line when the ranks' inputs differ;
* a rank that dies in a run stops the others, with one line and nothing half-written;
* the benchmark's units spread over 2 ranks, killed mid-grid and resumed, give the table of one
  process;
* the pieces: row sharding, the CPU global batch norm against PyTorch's, the agreement's
  messages, commands that refuse torchrun.

Processes are started directly (RANK, WORLD_SIZE, MASTER_ADDR/PORT in their environment, as
torchrun sets them) or by torchrun itself (python -m torch.distributed.run); each is one CPU
thread. Timeouts are short so that a bug cannot hang the suite.
"""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import sftc
from sftc import distributed
from sftc.cli import main
from sftc.engine import syncbn
from sftc.engine.data_parallel import check_batch_size, row_range, split_sizes

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import distributed_worker as worker  # noqa: E402

LIMIT = 240          # seconds any group of processes may take before the test fails
TOLERANCE = 1e-5     # weights after a run: float reduction order only


#: Rendezvous ports: each pytest-xdist worker (``PYTEST_XDIST_WORKER``, gw0 when there is none)
#: draws from its own band, below the kernel's ephemeral range, where the ranks' own connections
#: and other processes' ``bind(0)`` take theirs.
PORT_BASE, PORT_BAND, PORT_BANDS = 20000, 500, 25
_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port free now for one job's rendezvous, in this worker's band, at random within it (two
    runs of the suite at once rarely meet), never one this process handed out before."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    low = PORT_BASE + (index % PORT_BANDS) * PORT_BAND
    for port in random.SystemRandom().sample(range(low, low + PORT_BAND), PORT_BAND):
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("", port))
            except OSError:     # in use (or lingering) on some interface
                continue
        _HANDED_OUT.add(port)
        return port
    raise AssertionError(f"no free port in {low}-{low + PORT_BAND - 1}")


def rank_env(rank: int, world: int, port: int) -> dict:
    src = str(Path(sftc.__file__).resolve().parents[1])
    return {**os.environ, "RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
            "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
            "OMP_NUM_THREADS": "1", "SFTC_DIST_TIMEOUT": "60", "SFTC_DIST_PHASE_TIMEOUT": "120",
            "PYTHONPATH": os.pathsep.join(
                [src, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


def start_ranks(world: int, argv_of, cwd_of=None, **popen) -> list[subprocess.Popen]:
    """``world`` processes of one job; ``argv_of(rank)`` and ``cwd_of(rank)`` per rank."""
    port = free_port()
    return [subprocess.Popen(argv_of(r), env=rank_env(r, world, port),
                             cwd=cwd_of(r) if cwd_of else None, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, **popen) for r in range(world)]


def finish(procs, limit: float = LIMIT) -> list[tuple[int, str, str]]:
    out = []
    for p in procs:
        try:
            stdout, stderr = p.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise AssertionError("a rank did not finish: the job hangs")
        out.append((p.returncode, stdout, stderr))
    return out


def sftc_argv(*args) -> list[str]:
    return [sys.executable, "-m", "sftc", *args]


def torchrun_argv(nproc: int, *args) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc),
            "--master-port", str(free_port()), "-m", "sftc", *args]


def lines(text: str) -> list[str]:
    """The lines sftc printed, notes aside."""
    return [line for line in text.splitlines()
            if line.startswith("sftc") and not line.startswith("sftc: note:")]


# -- data-parallel runs equal one process ---------------------------------------------------------

@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    """Both worker groups (2 and 3 ranks) run at once; each result dir holds rank 0's files."""
    root = tmp_path_factory.mktemp("ddp")
    split = worker.small_split()
    original = sftc.train(split, "small-cnn", epochs=3, seed=0, device="cpu", progress=False,
                          accel="off").model
    torch.save(original.state_dict(), root / "original.pt")
    groups = {}
    for world in (2, 3):
        (root / str(world)).mkdir()
        groups[world] = start_ranks(world, lambda r, w=world: [
            sys.executable, str(HERE / "distributed_worker.py"), str(root / "original.pt"),
            str(root / str(w))])
    for world, procs in groups.items():
        for code, _, stderr in finish(procs):
            assert code == 0, stderr[-2000:]
    return root, split, original


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.slow
def test_data_parallel_runs_equal_one_process(ddp_results, world):
    root, split, original = ddp_results
    for label, method, hparams, optimizer in worker.runs(world):
        alone = worker.run_one(split, original, method, hparams, optimizer, worker.BATCH)
        spread = torch.load(root / str(world) / f"{label}.pt", weights_only=False)
        assert spread["parallel"]["world_size"] == world
        assert spread["parallel"]["sync_batch_norm_layers"] == 3   # small-cnn's three BN layers
        ours = alone.model.state_dict()
        assert set(ours) == set(spread["state"])
        gap = max((ours[k].double() - v.double()).abs().max().item()
                  for k, v in spread["state"].items())
        assert gap < TOLERANCE, f"{label}: weights differ by {gap:.2e} with {world} ranks"
        if method is not None:   # the run did change the model
            start = original.state_dict()
            assert max((ours[k].double() - start[k].double()).abs().max().item()
                       for k in ours) > 100 * TOLERANCE
        for a, b in zip(alone.history.rows, spread["rows"]):
            for key in ("loss", "acc_retain"):
                if key in a:
                    assert b[key] == pytest.approx(a[key], abs=1e-5), (label, key)


@pytest.mark.slow
def test_the_audit_references_spread_over_ranks_equal_one_process(ddp_results, tmp_path):
    root, split, _ = ddp_results
    alone = worker.reference_pool(split, tmp_path / "cache")
    for world in (2, 3):
        checks = torch.load(root / str(world) / "checks.pt", weights_only=False)
        assert checks["trained_now"] == 4
        assert torch.allclose(checks["logits"], alone.logits, atol=1e-5)


@pytest.mark.slow
def test_batched_references_spread_over_ranks_by_group_equal_one_process(ddp_results, tmp_path):
    root, split, _ = ddp_results
    alone = worker.grouped_reference_pool(split, tmp_path / "cache")
    assert all(e["batched"] == 2 for e in alone.entries)
    for world in (2, 3):   # 2 groups of 2: with 3 ranks one rank trains none
        checks = torch.load(root / str(world) / "checks.pt", weights_only=False)
        assert torch.equal(checks["grouped"], alone.logits)


@pytest.mark.slow
def test_a_batch_that_does_not_split_over_the_ranks_is_refused(ddp_results):
    root, _, _ = ddp_results
    for world in (2, 3):
        refused = torch.load(root / str(world) / "checks.pt", weights_only=False)["refused"]
        assert refused.startswith(f"--batch-size 13 does not split over the {world} processes")
        assert f"use a multiple of {world}" in refused
    with pytest.raises(sftc.SftcError, match="e.g. 12 or 15"):
        check_batch_size(13, 3)
    check_batch_size(12, 3)


# -- bad input and dead ranks on the command line -------------------------------------------------

@pytest.fixture(scope="module")
def failing_jobs(tmp_path_factory):
    """Two jobs of 2 ranks at once: one whose ranks hold different checkpoints at the same path
    (as two machines could), one whose rank 1 is killed while training."""
    root = tmp_path_factory.mktemp("failing")
    disagree, dies = root / "disagree", root / "dies"
    for rank in (0, 1):
        (disagree / f"node{rank}").mkdir(parents=True)
        model = sftc.create_model("small-cnn", in_channels=1, num_classes=10, seed=rank)
        torch.save(model.state_dict(), disagree / f"node{rank}" / "m.pt")
    first = start_ranks(2, lambda r: sftc_argv(
        "unlearn", "--checkpoint", "m.pt", "--forget", "random:0.1", "--out",
        str(disagree / "out"), "--epochs", "1", "--quiet", "--device", "cpu", "--no-mia"),
        cwd_of=lambda r: disagree / f"node{r}")
    dies.mkdir()
    second = start_ranks(2, lambda r: sftc_argv("train", "--epochs", "500", "--out",
                                                str(dies / "model"), "--quiet", "--device", "cpu"))
    deadline = time.monotonic() + LIMIT
    while not any(dies.glob(".model.tmp-*")):   # rank 0 is at work
        assert time.monotonic() < deadline and second[0].poll() is None, second[0].stderr.read()
        time.sleep(0.05)
    time.sleep(1.0)
    second[1].send_signal(signal.SIGKILL)
    return {"disagree": (disagree, finish(first)), "dies": (dies, finish(second, limit=90))}


@pytest.mark.slow
def test_ranks_that_disagree_on_the_checkpoint_all_stop_with_one_line(failing_jobs):
    root, [(code0, _, err0), (code1, _, err1)] = failing_jobs["disagree"]
    assert code0 == 2 and code1 == 2
    assert len(lines(err0)) == 1 and lines(err1) == [], err1
    assert lines(err0)[0].startswith("sftc unlearn: error: the ranks of this job disagree on "
                                     "the --checkpoint m.pt: SHA-256 ")
    assert "on rank 1" in err0 and "same file" in err0
    assert not (root / "out").exists() and not any(root.glob(".out*"))


@pytest.mark.slow
def test_a_rank_that_dies_stops_the_others_and_leaves_nothing(failing_jobs):
    root, [(code0, _, err0), (code1, _, _)] = failing_jobs["dies"]
    assert code1 == -signal.SIGKILL and code0 == 1
    assert len(lines(err0)) == 1, err0
    assert lines(err0)[0].startswith("sftc train: error: lost contact with the other processes")
    assert sorted(p.name for p in root.iterdir()) == []   # no output, temporary, nor lock


def test_commands_that_run_as_one_process_refuse_torchrun(monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert main(["methods"]) == 2
    err = capsys.readouterr().err
    assert lines(err) == ["sftc methods: error: sftc methods runs as one process; start it "
                          "without torchrun (under torchrun: sftc train, unlearn, audit and "
                          "benchmark)"]
    monkeypatch.setenv("RANK", "1")   # the other ranks say nothing
    assert main(["methods"]) == 2 and capsys.readouterr().err == ""
    assert main(["train", "--bogus"]) == 2 and capsys.readouterr().err == ""


# -- the benchmark over ranks: killed, resumed, the table of one process ----------------------------

BENCH = ["--seeds", "0,1", "--lrs", "1e-3,5e-4", "--max-epochs", "2", "--train-epochs", "2",
         "--train-subset", "200", "--methods", "ft,sftc", "--mia-attacker",
         "hist-gradient-boosting", "--mia-iterations", "20", "--quiet", "--device", "cpu"]
TIMES = ("unlearn_seconds", "retrain_seconds", "time_ratio")


def table_numbers(out: Path) -> list[dict]:
    rows = json.loads((out / "table1.json").read_text())["rows"]
    return [{k: v for k, v in row.items() if not k.startswith(TIMES)} for row in rows]


def worker_pid(agent: int, rank: int) -> int | None:
    """The pid of torchrun's worker of ``rank`` (a child of the agent process)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            env = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == agent and f"RANK={rank}".encode() in env:
            return int(entry.name)
    return None


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux's /proc")
@pytest.mark.slow
def test_the_benchmark_over_ranks_survives_a_killed_rank_and_gives_the_table_of_one_process(
        tmp_path, monkeypatch):
    out, cache = tmp_path / "spread", tmp_path / "cache"
    env = rank_env(0, 1, free_port())
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
                "MASTER_PORT"):
        env.pop(key)
    argv = torchrun_argv(2, "benchmark", *BENCH, "--out", str(out), "--cache-dir", str(cache))
    job = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    deadline = time.monotonic() + LIMIT
    while not list(out.glob("runs/*/*/*/result.json")):   # the grid has started
        assert time.monotonic() < deadline and job.poll() is None, job.communicate()[1][-3000:]
        time.sleep(0.05)
    pid = worker_pid(job.pid, 1)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    _, err = job.communicate(timeout=90)
    assert job.returncode != 0
    # what the killed job left: whole files only, no table, the lock free, a resumable state
    assert not (out / "table1.json").exists()
    done = list(out.glob("runs/*/*/*/result.json"))
    assert 1 <= len(done) < 8
    for path in out.rglob("*.json"):
        json.loads(path.read_text())
    manifest = json.loads((out / "benchmark.json").read_text())
    assert manifest["sessions"][-1]["world_size"] == 2
    assert manifest["sessions"][-1]["finished"] is None
    # resumed by a new job of 2 ranks
    resumed = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=LIMIT)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stderr
    # one process, its own cache, the default speed rule as in the ranks: the same table
    monkeypatch.delenv("SFTC_ACCEL", raising=False)
    alone = tmp_path / "alone"
    assert main(["benchmark", *BENCH, "--out", str(alone), "--cache-dir",
                 str(tmp_path / "cache1")]) == 0
    assert table_numbers(out) == table_numbers(alone)


# -- the pieces -------------------------------------------------------------------------------------

def test_rows_are_split_in_contiguous_slices_that_differ_by_at_most_one():
    for world in range(1, 6):
        for n in range(0, 40):
            sizes = split_sizes(n, world)
            assert sum(sizes) == n and max(sizes) - min(sizes) <= 1
            assert sizes == sorted(sizes, reverse=True)
            covered = [i for r in range(world) for i in range(*row_range(n, world, r))]
            assert covered == list(range(n))


@pytest.fixture
def one_rank_group():
    import torch.distributed as dist

    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    yield dist.group.WORLD
    dist.destroy_process_group()


@pytest.mark.parametrize("momentum", [0.1, None])
def test_the_cpu_global_batch_norm_is_pytorchs_batch_norm(one_rank_group, momentum):
    """The formulas of the CPU path, on one rank (where the global batch is the local one),
    against F.batch_norm: output, running statistics and every gradient."""
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(7, 3, 4, 5, generator=g, dtype=torch.float64) * 2 + 1).requires_grad_()
    w = torch.rand(3, generator=g, dtype=torch.float64).add(0.5).requires_grad_()
    b = torch.randn(3, generator=g, dtype=torch.float64).requires_grad_()
    up = torch.randn(7, 3, 4, 5, generator=g, dtype=torch.float64)
    stats = [torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)]
    theirs_stats = [s.clone() for s in stats]
    factor = 0.1 if momentum else 1.0   # momentum None: cumulative average, first batch -> 1
    ours = syncbn._GlobalBatchNorm.apply(x, w, b, *stats, 1e-5, factor, one_rank_group)
    grads = torch.autograd.grad((ours * up).sum(), (x, w, b))
    theirs = F.batch_norm(x, *theirs_stats, w, b, True, factor, 1e-5)
    expected = torch.autograd.grad((theirs * up).sum(), (x, w, b))
    torch.testing.assert_close(ours, theirs)
    for a, e in zip(grads, expected):
        torch.testing.assert_close(a, e)
    for a, e in zip(stats, theirs_stats):
        torch.testing.assert_close(a, e)


def test_convert_shares_the_tensors_and_restore_puts_the_layers_back():
    model = sftc.create_model("small-cnn", in_channels=1, num_classes=10)
    bn = model.stage2[1]
    swapped = syncbn.convert(model)
    assert len(swapped) == 3 and isinstance(model.stage2[1], syncbn.GlobalBatchNorm)
    assert model.stage2[1].weight is bn.weight and model.stage2[1].running_var is bn.running_var
    with torch.no_grad():
        model.stage2[1].running_var.add_(1.0)   # what a run updates lands in the original
    syncbn.restore(model, swapped)
    assert model.stage2[1] is bn and float(bn.running_var.min()) == 2.0
    assert not any(isinstance(m, syncbn.GlobalBatchNorm) for m in model.modules())


class _Job:
    def __init__(self, rank: int):
        self.rank, self.world = rank, 2


def test_the_agreement_names_what_differs_and_who_failed(monkeypatch):
    facts = {"arguments": {"seed": 0, "out": "o"}, "data": "a" * 64}
    theirs = {"arguments": {"seed": 1, "out": "o"}, "data": "a" * 64}
    from sftc.cli import ranks
    from sftc.engine import process_group

    monkeypatch.setattr(process_group, "_job", _Job(0))
    with pytest.raises(sftc.SftcError, match=r"^the ranks of this job disagree on the "
                                             r"arguments: seed: 0 on rank 0, 1 on rank 1; start "
                                             r"every rank with the same command line$"):
        ranks._judge([{"stage": "start", "facts": facts}, {"stage": "start", "facts": theirs}])
    failed = {"stage": "start", "error": "forget file x.npy not found", "code": 2}
    with pytest.raises(sftc.SftcError, match=r"^rank 1: forget file x.npy not found$"):
        ranks._judge([{"stage": "start", "facts": facts}, failed])
    monkeypatch.setattr(process_group, "_job", _Job(1))   # rank 1 stops silently
    with pytest.raises(ranks.PeerFailed):
        ranks._judge([{"stage": "start", "facts": facts}, failed])
    monkeypatch.setattr(process_group, "_job", _Job(0))
    ranks._judge([{"stage": "start", "facts": facts}] * 2)   # agreement: no error
