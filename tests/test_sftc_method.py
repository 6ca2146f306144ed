"""SFTC (section 4): the generator, the loss by hand, and its run-level invariants."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import sftc
from sftc.methods.sftc import biased_random_logits, sftc_loss


def test_generator_with_c0_biases_every_row_to_its_label():
    torch.manual_seed(0)
    labels = torch.arange(5000) % 7
    out = biased_random_logits(labels, 7, c=0.0)
    assert out.shape == (5000, 7)
    assert torch.equal(out.argmax(1), labels)
    assert (out >= 0).all()


def test_generator_with_c1_is_unbiased():
    torch.manual_seed(0)
    labels = torch.zeros(20000, dtype=torch.long)
    out = biased_random_logits(labels, 10, c=1.0)
    hits = (out.argmax(1) == labels).float().mean().item()
    assert hits == pytest.approx(0.1, abs=0.01)  # label wins only by chance: no bias
    assert out[:, 0].mean().item() == pytest.approx(out[:, 1:].mean().item(), abs=0.02)


def test_generator_with_c_half_relabels_about_half():
    torch.manual_seed(0)
    labels = torch.arange(20000) % 10
    out = biased_random_logits(labels, 10, c=0.5, n_relabel=10000)
    moved = (out.argmax(1) != labels).float().mean().item()
    assert moved == pytest.approx(0.5 * 0.9, abs=0.015)  # a random new label equals the old 1/10


def test_generator_relabels_only_eligible_rows():
    torch.manual_seed(0)
    labels = torch.arange(1000) % 5
    eligible = torch.arange(1000) < 500
    out = biased_random_logits(labels, 5, c=0.9, n_relabel=450, eligible=eligible)
    assert torch.equal(out.argmax(1)[~eligible], labels[~eligible])


def _sequential_reference(labels, num_classes, rng):
    """The authors' per-sample loop (|N(0,1)|, add U(0.5, 1) until the label is the largest)."""
    values = np.abs(rng.normal(size=(len(labels), num_classes)))
    for i, label in enumerate(labels):
        while np.argmax(values[i]) != label:
            values[i, label] += rng.uniform(0.5, 1)
    return values


def test_vectorised_generator_has_the_sequential_loops_distribution():
    labels = np.arange(20000) % 10
    ref = _sequential_reference(labels, 10, np.random.default_rng(0))
    torch.manual_seed(0)
    vec = biased_random_logits(torch.from_numpy(labels), 10, c=0.0).numpy()
    pick = lambda v: v[np.arange(len(labels)), labels]  # noqa: E731
    assert pick(vec).mean() == pytest.approx(pick(ref).mean(), abs=0.02)
    assert pick(vec).std() == pytest.approx(pick(ref).std(), abs=0.02)


def test_sftc_loss_equals_the_formula_by_hand():
    student = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [-0.5, 1.5, 0.0]])
    labels = torch.tensor([0, 2, 1])
    flag = torch.tensor([0, 1, 0])
    teacher = torch.tensor([[3.0, 0.0, 0.0], [9.0, 9.0, 9.0], [0.0, 2.0, 1.0]])
    generator = torch.tensor([[7.0, 7.0, 7.0], [0.2, 0.1, 1.4], [7.0, 7.0, 7.0]])
    tau = 2.0
    # CE over the retain rows 0 and 2 (Eq. 1, mean over selected samples)
    ce = (-F.log_softmax(student[0], 0)[0] - F.log_softmax(student[2], 0)[1]) / 2
    # KL(target || student) with temperature, summed over classes, averaged over the batch (Eq. 2)
    targets = [F.softmax(teacher[0] / tau, 0), F.softmax(generator[1] / tau, 0),
               F.softmax(teacher[2] / tau, 0)]
    kl = sum((t * (t.log() - F.log_softmax(student[i] / tau, 0))).sum()
             for i, t in enumerate(targets)) / 3
    got = sftc_loss(student, labels, flag, teacher, generator, tau)
    assert got.item() == pytest.approx((ce + kl).item(), rel=1e-6)


def test_sftc_loss_without_retain_rows_is_kl_only():
    student = torch.randn(2, 3)
    gen = torch.randn(2, 3)
    loss = sftc_loss(student, torch.tensor([0, 1]), torch.tensor([1, 1]), torch.zeros(2, 3), gen)
    kl = F.kl_div(F.log_softmax(student, 1), F.softmax(gen, 1), reduction="batchmean")
    assert loss.item() == pytest.approx(kl.item(), rel=1e-6)


def test_teacher_runs_once_on_retain_only(tiny_split):
    model = sftc.build_model("small-cnn", 1, 4, seed=0)
    seen = []
    calls = {"n": 0}

    class Spy(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            calls["n"] += 1
            seen.append(len(x))
            return self.inner(x)

    # the plain path (no measurement runs); with measurements on, predict_logits is checked in
    # test_frozen_models_run_only_on_samples_whose_outputs_are_read
    result = sftc.unlearn(Spy(model), tiny_split, "sftc", epochs=2, device="cpu", progress=False,
                          accel="off")
    # the student forward runs once per batch; the teacher only in setup, on retain samples
    assert result.history.rows[-1]["epoch"] == 2
    student_steps = sum(r["steps"] for r in result.history.rows)
    probe = seen[0]  # unlearn() first checks that the model accepts the inputs (2 samples)
    teacher_calls = seen[1: len(seen) - student_steps]
    assert probe == 2
    assert sum(teacher_calls) == len(tiny_split.retain)


@pytest.mark.parametrize("kwargs, message", [({"tau": 0}, "tau=0.0 must be a positive"),
                                             ({"c": 1.5}, "c=1.5 must lie in [0, 1]"),
                                             ({"beta": 1}, "no hyperparameter 'beta'")])
def test_bad_hyperparameters_are_rejected(kwargs, message):
    with pytest.raises(sftc.SftcError, match=message.replace("[", r"\[").replace("]", r"\]")):
        sftc.create_method("sftc", **kwargs)


@pytest.mark.slow
def test_same_seed_gives_the_same_numbers(digits_split, digits_original):
    runs = [sftc.unlearn(digits_original.model, digits_split, "sftc", epochs=1, seed=3,
                         device="cpu", progress=False, c=0.3) for _ in range(2)]
    for a, b in zip(runs[0].model.state_dict().values(), runs[1].model.state_dict().values()):
        assert torch.equal(a, b)
    metrics = [sftc.evaluate(digits_original.model, r.model, digits_split, device="cpu",
                             mia_iterations=20, seed=0) for r in runs]
    for key in ("acc_forget", "acc_test", "js", "js_paper", "mia"):
        assert metrics[0][key] == metrics[1][key]


def test_sftc_forgets_on_digits_while_test_accuracy_holds(digits_split, digits_original):
    before = sftc.evaluate(digits_original.model, digits_original.model, digits_split,
                           device="cpu", mia=False)
    result = sftc.unlearn(digits_original.model, digits_split, "sftc", epochs=3, lr=2e-3,
                          device="cpu", progress=False, seed=0)
    after = sftc.evaluate(digits_original.model, result.model, digits_split, device="cpu",
                          mia=False)
    assert after["acc_forget"] < before["acc_forget"]
    assert abs(after["acc_test"] - before["acc_test"]) < 0.03
    assert after["js"] > 0


def test_input_model_is_not_modified(tiny_split):
    model = sftc.build_model("small-cnn", 1, 4, seed=0)
    snapshot = {k: v.clone() for k, v in model.state_dict().items()}
    sftc.unlearn(model, tiny_split, "sftc", epochs=1, device="cpu", progress=False)
    for key, value in model.state_dict().items():
        assert torch.equal(value, snapshot[key])


@pytest.mark.parametrize("tau, c", [(1.0, 0.0), (2.0, 0.5), (1.0, 1.0)])
def test_fused_epoch_loss_equals_the_reference_formula(tiny_split, tau, c):
    """The per-epoch precomputed form of Eq. 3 gives the same value as sftc_loss on every batch."""
    from sftc.engine import Batch, RunContext

    model = sftc.build_model("small-cnn", 1, 4, seed=0)
    ctx = RunContext(model=model, split=tiny_split, device=torch.device("cpu"), batch_size=16,
                     augment=False, generator=torch.Generator().manual_seed(0))
    ctx.original = ctx.frozen_copy(model)
    method = sftc.create_method("sftc", tau=tau, c=c)
    method.setup(ctx)
    batches = method.plan(ctx, 1)
    assert sum(int(b.flag.sum()) for b in batches) == len(tiny_split.forget)
    for plan in batches:
        x, y = tiny_split.data.batch(plan.index, "cpu")
        logits = model(x)
        batch = Batch(x, y, plan.index, plan.flag, plan.phase, int(plan.flag.sum()))
        fused = method.loss(ctx, batch, logits)
        soft = method.targets[plan.index]
        as_logits = tau * soft.log()  # softmax(as_logits / tau) == soft
        reference = sftc_loss(logits, y, plan.flag, as_logits, as_logits, tau)
        assert fused.item() == pytest.approx(reference.item(), rel=1e-5)
        g1 = torch.autograd.grad(fused, logits, retain_graph=True)[0]
        g2 = torch.autograd.grad(reference, logits)[0]
        assert torch.allclose(g1, g2, atol=1e-6)
        if c == 0.0:  # every forget target is biased toward the sample's own label
            rows = plan.flag == 1
            assert torch.equal(soft[rows].argmax(1), y[rows])


def test_per_batch_relabel_counts_follow_the_authors_rule():
    from sftc.methods.sftc import _relabel_per_batch

    torch.manual_seed(0)
    labels = torch.full((14,), -1)
    out = _relabel_per_batch(labels, [10, 0, 4], c=0.5, num_classes=3)
    changed = out != -1
    assert changed[:10].sum() == 5 and changed[10:].sum() == 2  # int(10·0.5), int(4·0.5)
    out = _relabel_per_batch(torch.full((3,), -1), [3], c=0.1, num_classes=3)
    assert (out != -1).sum() == 1  # at least one per batch, as in the authors' code


@pytest.mark.parametrize("tau", [0.5, 3.0])
def test_epoch_loss_uses_temperature_on_teacher_and_generator_targets(tiny_split, monkeypatch, tau):
    """Eq. 3 against targets computed here, independently: the teacher's logits from running the
    original model, the generator's from a scripted generator, both softened by τ."""
    import sftc.methods.sftc as sftc_module
    from sftc.engine import Batch, RunContext

    scripted = lambda targets, num_classes, c, *a, **k: (  # noqa: E731
        F.one_hot(targets, num_classes).float() * 3.0 + 0.25)
    monkeypatch.setattr(sftc_module, "biased_random_logits", scripted)
    model = sftc.build_model("small-cnn", 1, 4, seed=0)
    teacher = sftc.build_model("small-cnn", 1, 4, seed=0).eval()
    ctx = RunContext(model=model, split=tiny_split, device=torch.device("cpu"), batch_size=16,
                     augment=False, generator=torch.Generator().manual_seed(0))
    ctx.original = ctx.frozen_copy(model)
    method = sftc.create_method("sftc", tau=tau, c=0.0)
    method.setup(ctx)
    model.train()
    for plan in method.plan(ctx, 1):
        x, y = tiny_split.data.batch(plan.index, "cpu")
        logits = model(x)
        batch = Batch(x, y, plan.index, plan.flag, plan.phase, int(plan.flag.sum()))
        with torch.no_grad():
            teacher_logits = teacher(x)
        expected = sftc_loss(logits, y, plan.flag, teacher_logits, scripted(y, 4, 0.0), tau)
        assert method.loss(ctx, batch, logits).item() == pytest.approx(expected.item(), rel=1e-5)
