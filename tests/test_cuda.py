"""The engine's device paths, on the device benchmarks/gpu_check.sh names (SFTC_TEST_DEVICE,
default cuda; skipped where it is not available, as on the project's CPU machines).

``benchmarks/gpu_check.sh --device cpu --tiny`` runs them on the CPU (tests/test_gpu_check.py),
so that they are known to run before a GPU is lent. On CUDA, convolutions may use TF32 (PyTorch's
default for cuDNN), so "equal up to rounding" is looser there than on the CPU. Not covered: data
parallelism under NCCL (it needs two GPUs; the lent machine has one).
"""
from __future__ import annotations

import os

import pytest
import torch

import sftc
from sftc.bench.reference_pool import ReferencePool, ReferenceRecipe
from sftc.engine import Accel, Recipe, run
from sftc.engine import batched
from sftc.methods.supervised import TrainOnRetain
from sftc.models import create_model

DEVICE = os.environ.get("SFTC_TEST_DEVICE", "cuda")
pytestmark = pytest.mark.skipif(DEVICE.startswith("cuda") and not torch.cuda.is_available(),
                                reason=f"no {DEVICE} device here")
TOL = 1e-4 if DEVICE == "cpu" else 3e-2


@pytest.fixture(scope="module")
def split():
    """200 digits (180 retain) and 100 others."""
    full = sftc.load_split("digits", "random:0.1", seed=0)
    images, labels = full.data.images, full.data.labels
    return sftc.Split.from_tensors(images[:200], labels[:200], "random:0.1",
                                   test=(images[1500:1600], labels[1500:1600]), num_classes=10)


def weights(model) -> dict:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def logits(model, split) -> torch.Tensor:
    x, _ = split.data.batch(split.test, DEVICE)
    with torch.no_grad():
        return model.to(DEVICE).eval()(x).float().cpu()


def test_training_on_the_device_gives_the_same_bits_twice(split):
    kw = dict(epochs=2, seed=3, device=DEVICE, subset="retain", progress=False, accel="off")
    a, b = (weights(sftc.train(split, "small-cnn", **kw).model) for _ in range(2))
    assert all(torch.equal(a[k], b[k]) for k in a), "the same seed gave other weights"


def test_batched_training_on_the_device_is_the_one_at_a_time_model_and_repeatable(split):
    seeds = [1, 2]
    recipe = Recipe(epochs=2, lr=1e-3, batch_size=64, device=DEVICE, accel=Accel.plain())
    models = [create_model("small-cnn", in_channels=1, num_classes=10, seed=s) for s in seeds]
    assert batched.batch_refusal(models, split, recipe) is None
    first = batched.train_group(TrainOnRetain(), models, seeds, split, recipe)
    second = batched.train_group(TrainOnRetain(), models, seeds, split, recipe)
    for (a, _), (b, _) in zip(first, second):
        wa, wb = weights(a), weights(b)
        assert all(torch.equal(wa[k], wb[k]) for k in wa), "a batched group is not repeatable"
    for (model, _), m, s in zip(first, models, seeds):
        alone, _ = run(TrainOnRetain(), m, split, Recipe(**{**recipe.__dict__, "seed": s}),
                       progress=False)
        gap = (logits(model, split) - logits(alone, split)).abs().max().item()
        assert gap < TOL, f"seed {s}: batched logits differ by {gap:.2e}"


def test_the_pool_batches_by_the_devices_rule_and_trains_whole_groups(split, tmp_path):
    recipe = ReferenceRecipe("small-cnn", epochs=1, batch_size=32)
    pool = ReferencePool(split, recipe, cache_dir=tmp_path, device=DEVICE, progress=False)
    expected = batched.default_group_size(DEVICE)
    assert pool.group == expected and pool.batch_refused is None
    refs = pool.get(4)
    assert refs.count == 4 and bool(torch.isfinite(refs.logits).all())
    stored = len(list((tmp_path / "models").glob("*/meta.json")))
    assert stored == max(expected, 4)            # a pool of 4 trains its whole first group


def test_the_engines_speed_choices_and_bf16_on_the_device_stay_close_to_the_plain_path(split):
    original = sftc.train(split, "small-cnn", epochs=2, device=DEVICE, progress=False,
                          accel="off").model
    kw = dict(epochs=2, device=DEVICE, progress=False, seed=0)
    plain = sftc.unlearn(original, split, "sftc", accel="off", **kw)
    auto = sftc.unlearn(original, split, "sftc", accel="auto", **kw)
    bf16 = sftc.unlearn(original, split, "sftc", accel={"autocast": "bf16"}, **kw)
    assert auto.history.accel["train"]["autocast"] == "off"
    assert bf16.history.accel["train"]["autocast"] == "bf16"
    base = logits(plain.model, split)
    assert (logits(auto.model, split) - base).abs().max().item() < max(TOL, 1e-3)
    bf = logits(bf16.model, split)
    assert bool(torch.isfinite(bf).all())
    agree = (bf.argmax(1) == base.argmax(1)).float().mean().item()
    assert agree > 0.8, f"bf16 and fp32 agree on {agree:.0%} of the test samples"
