"""Each method's loss against its formula worked out here, on every kind of batch it meets.

Written from the survivors of a mutation run (docs/testing.md): every branch of a loss (batches of
retain rows only, forget rows only, mixed; cached teachers and live ones under augmentation) is
compared with the formula computed independently, with the teachers run directly.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import sftc
from sftc.engine import Batch, PlannedBatch, RunContext
from sftc.engine.context import reinitialised
from sftc.methods import create_method
from sftc.methods.losses import kl_to_target
from sftc.methods.sftc import biased_random_logits, sftc_loss


def hand_kl(student_logits, target_logits, tau):
    """KL(softmax(target/τ) ‖ softmax(student/τ)) summed over classes, mean over rows."""
    p = F.softmax(target_logits / tau, dim=1)
    return (p * (p.log() - F.log_softmax(student_logits / tau, dim=1))).sum(1).mean()


def context(split, model, augment=False, batch_size=32):
    ctx = RunContext(model=model, split=split, device=torch.device("cpu"), batch_size=batch_size,
                     augment=augment, generator=torch.Generator().manual_seed(0))
    ctx.original = ctx.frozen_copy(model)
    return ctx


def model_for(split, seed=2):
    return sftc.build_model("small-cnn", split.data.channels, split.data.num_classes, seed=seed)


def load(split, index, flag=None, phase="union"):
    x, y = split.data.batch(index, "cpu")
    flag = flag if flag is not None else torch.zeros(len(index), dtype=torch.long)
    return Batch(x, y, index, flag, phase, int(flag.sum()))


# -- the shared KL ----------------------------------------------------------------------------

def test_kl_to_target_is_batch_mean_kl_with_temperature_and_zero_on_an_empty_batch():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g) * 3
    assert kl_to_target(s, t).item() == pytest.approx(hand_kl(s, t, 1.0).item(), rel=1e-6)
    assert kl_to_target(s, t, 3.0).item() == pytest.approx(hand_kl(s, t, 3.0).item(), rel=1e-6)
    empty = torch.zeros(0, 4, requires_grad=True)
    out = kl_to_target(empty, torch.zeros(0, 4))
    assert out.item() == 0.0
    out.backward()                                  # defined, not NaN
    single = kl_to_target(s[:1], t[:1])
    assert single.item() == pytest.approx(hand_kl(s[:1], t[:1], 1.0).item(), rel=1e-6)


# -- Bad-Teaching -----------------------------------------------------------------------------

@pytest.mark.parametrize("augment", [False, True])
@pytest.mark.parametrize("kind", ["retain-only", "forget-only", "mixed"])
def test_bad_teaching_loss_on_every_kind_of_batch(tiny_split, augment, kind):
    tau = 2.0
    model = model_for(tiny_split)
    ctx = context(tiny_split, model, augment=augment)
    method = create_method("bad-teaching", tau=tau, init_seed=5)
    method.setup(ctx)
    good = model_for(tiny_split).eval()
    bad = reinitialised(model_for(tiny_split), 5).eval()
    retain, forget = tiny_split.retain[:6], tiny_split.forget[:4]
    index = {"retain-only": retain, "forget-only": forget,
             "mixed": torch.cat([retain, forget])}[kind]
    flag = torch.cat([torch.zeros(len(retain) if kind != "forget-only" else 0, dtype=torch.long),
                      torch.ones(len(forget) if kind != "retain-only" else 0, dtype=torch.long)])
    batch = load(tiny_split, index, flag)
    logits = model(batch.x)
    with torch.no_grad():
        target = torch.where(flag.bool().unsqueeze(1), bad(batch.x), good(batch.x))
    assert method.loss(ctx, batch, logits).item() == pytest.approx(
        hand_kl(logits, target, tau).item(), rel=1e-5)


# -- SCRUB ------------------------------------------------------------------------------------

def test_scrub_losses_are_the_distillation_formulas_with_tau_squared(tiny_split):
    tau, alpha, gamma = 4.0, 0.3, 0.7
    model = model_for(tiny_split)
    ctx = context(tiny_split, model)
    method = create_method("scrub", tau=tau, alpha=alpha, gamma=gamma, msteps=1)
    ctx.epochs = 1
    method.setup(ctx)
    teacher = model_for(tiny_split).eval()
    for index, phase in ((tiny_split.forget[:5], "max"), (tiny_split.retain[:7], "min")):
        batch = load(tiny_split, index, phase=phase)
        logits = model(batch.x)
        with torch.no_grad():
            t = teacher(batch.x)
        kl = hand_kl(logits, t, tau) * tau ** 2
        expected = -kl if phase == "max" else gamma * F.cross_entropy(logits, batch.y) + alpha * kl
        assert method.loss(ctx, batch, logits).item() == pytest.approx(expected.item(), rel=1e-5)


def test_scrub_without_max_steps_or_kl_needs_no_teacher(tiny_split):
    method = create_method("scrub", msteps=0, alpha=0.0)
    model = model_for(tiny_split)
    ctx = context(tiny_split, model)
    ctx.epochs = 1
    method.setup(ctx)
    batch = load(tiny_split, tiny_split.retain[:8], phase="min")
    logits = model(batch.x)
    expected = 0.99 * F.cross_entropy(logits, batch.y)
    assert method.loss(ctx, batch, logits).item() == pytest.approx(expected.item(), rel=1e-6)


# -- NegGrad ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["neggrad", "neggrad+"])
def test_neggrad_losses(tiny_split, name):
    method = create_method(name, forget_weight=0.5)
    model = model_for(tiny_split)
    ctx = context(tiny_split, model)
    method.setup(ctx)
    plan = next(iter(method.plan(ctx, 1)))
    batch = load(tiny_split, plan.index, plan.flag, plan.phase)
    logits = model(batch.x)
    n_retain = len(plan.index) - batch.n_forget
    expected = -0.5 * F.cross_entropy(logits[n_retain:], batch.y[n_retain:])
    if name == "neggrad+":
        assert n_retain == ctx.batch_size
        expected = expected + F.cross_entropy(logits[:n_retain], batch.y[:n_retain])
    else:
        assert n_retain == 0
    assert method.loss(ctx, batch, logits).item() == pytest.approx(expected.item(), rel=1e-6)


# -- SFTC: the generator ----------------------------------------------------------------------

def test_generator_with_c1_is_exactly_the_absolute_normal_draws():
    labels = torch.arange(300) % 7
    torch.manual_seed(11)
    expected = torch.randn(300, 7).abs()
    torch.manual_seed(11)
    assert torch.equal(biased_random_logits(labels, 7, c=1.0), expected)


def test_generator_default_relabel_count_is_the_share_c_of_the_rows_at_least_one():
    torch.manual_seed(0)
    labels = torch.zeros(4000, dtype=torch.long)
    moved = (biased_random_logits(labels, 10, c=0.25).argmax(1) != labels).float().mean()
    assert moved.item() == pytest.approx(0.25 * 0.9, abs=0.02)   # int(4000 · 0.25) rows
    changed = []
    for seed in range(40):                                       # int(20 · 0.01) = 0 -> 1 row
        torch.manual_seed(seed)
        labels = torch.zeros(20, dtype=torch.long)
        changed.append(int((biased_random_logits(labels, 5, c=0.01).argmax(1) != 0).sum()))
    assert max(changed) == 1 and sum(changed) > 20               # one row, new label 4/5 times


def test_relabelled_classes_are_uniform_over_every_class():
    from sftc.methods.sftc import _relabel_per_batch

    torch.manual_seed(0)
    out = biased_random_logits(torch.full((20000,), 3), 5, c=0.999, n_relabel=19999)
    counts = torch.bincount(out.argmax(1), minlength=5).float() / 20000
    assert torch.allclose(counts, torch.full((5,), 0.2), atol=0.015)
    relabelled = _relabel_per_batch(torch.full((5000,), -1), [5000], 1.0, 5)
    assert set(relabelled.tolist()) == {0, 1, 2, 3, 4}


# -- SFTC: the epoch's targets (fused path) ---------------------------------------------------

def prepared(split, c, tau=1.0):
    model = model_for(split)
    ctx = context(split, model)
    method = create_method("sftc", tau=tau, c=c)
    method.setup(ctx)
    return model, ctx, method


def test_fused_targets_with_c1_are_not_biased_toward_the_label(tiny_split):
    torch.manual_seed(0)
    _, ctx, method = prepared(tiny_split, c=1.0)
    hits = []
    for _ in range(30):
        batches = method.plan(ctx, 1)
        forget = torch.cat([b.index[b.flag == 1] for b in batches])
        hits.append((method.targets[forget].argmax(1) == tiny_split.data.labels[forget]).float())
    assert torch.cat(hits).mean().item() == pytest.approx(0.25, abs=0.06)   # 4 classes: chance


def test_fused_targets_with_c_half_relabel_some_forget_samples(tiny_split):
    torch.manual_seed(0)
    _, ctx, method = prepared(tiny_split, c=0.5)
    batches = method.plan(ctx, 1)
    forget = torch.cat([b.index[b.flag == 1] for b in batches])
    moved = (method.targets[forget].argmax(1) != tiny_split.data.labels[forget]).float().mean()
    assert 0.15 < moved.item() < 0.6                # about half relabelled, 3/4 of those moved


def test_fused_loss_on_a_batch_with_one_retain_row(tiny_split):
    model, ctx, method = prepared(tiny_split, c=0.0, tau=2.0)
    index = torch.cat([tiny_split.retain[:1], tiny_split.forget[:5]])
    flag = torch.tensor([0, 1, 1, 1, 1, 1])
    plans = [PlannedBatch(index, flag, "union")]
    method._prepare_epoch(ctx, plans)
    batch = load(tiny_split, index, flag)
    logits = model(batch.x)
    soft = method.targets[index]
    expected = sftc_loss(logits, batch.y, flag, 2.0 * soft.log(), 2.0 * soft.log(), 2.0)
    assert method.loss(ctx, batch, logits).item() == pytest.approx(expected.item(), rel=1e-5)


# -- SFTC: live teacher (augmentation) ---------------------------------------------------------

@pytest.mark.parametrize("c, expected_k", [(0.0, 0), (0.5, 2), (0.1, 1), (1.0, 0)])
def test_live_teacher_loss_and_relabel_count(tiny_split, monkeypatch, c, expected_k):
    import sftc.methods.sftc as sftc_module

    calls = []

    def scripted(targets, num_classes, c_arg, n_relabel=None, eligible=None):
        calls.append((c_arg, n_relabel, eligible.clone() if eligible is not None else None))
        return F.one_hot(targets, num_classes).float() * 2.0 + 0.5

    monkeypatch.setattr(sftc_module, "biased_random_logits", scripted)
    model = model_for(tiny_split)
    ctx = context(tiny_split, model, augment=True)
    method = create_method("sftc", tau=3.0, c=c)
    method.setup(ctx)
    assert method.targets is None                   # augmentation: no precomputed targets
    teacher = model_for(tiny_split).eval()
    index = torch.cat([tiny_split.retain[:5], tiny_split.forget[:5]])
    flag = torch.tensor([0] * 5 + [1] * 5)
    batch = load(tiny_split, index, flag)
    logits = model(batch.x)
    with torch.no_grad():
        teacher_logits = teacher(batch.x)
    generated = F.one_hot(batch.y, 4).float() * 2.0 + 0.5
    expected = sftc_loss(logits, batch.y, flag, teacher_logits, generated, 3.0)
    assert method.loss(ctx, batch, logits).item() == pytest.approx(expected.item(), rel=1e-5)
    (c_arg, k, eligible), = calls
    assert c_arg == c and k == expected_k and torch.equal(eligible, flag.bool())
