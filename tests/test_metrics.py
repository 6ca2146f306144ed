"""Metrics of section 5.4 against values worked out by hand and against scipy."""
import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import jensenshannon

import sftc
from sftc.metrics import (acc_dis, acc_err_original, acc_err_retrain, js_divergence, js_paper,
                          membership_inference, sape)


def test_sape_hand_values():
    assert sape(0.9, 0.8) == pytest.approx(0.1 / 1.7)
    assert sape(0.8, 0.9) == pytest.approx(0.1 / 1.7)  # symmetric
    assert sape(0.5, 0.5) == 0.0
    assert sape(0.0, 0.0) == 0.0  # defined as 0 when both are 0
    assert sape(0.0, 0.4) == pytest.approx(1.0)


def test_accuracy_errors_use_the_right_references():
    # Eq. 5: test accuracy of M_R vs M_u; Eq. 6: forget accuracy; Eq. 7: test accuracy of M vs M_u.
    assert acc_err_retrain(0.89, 0.88) == pytest.approx(0.01 / 1.77)
    assert acc_dis(0.90, 0.80) == pytest.approx(0.10 / 1.70)
    assert acc_err_original(0.90, 0.88) == pytest.approx(0.02 / 1.78)


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_textbook_js_matches_scipy_squared():
    rng = np.random.default_rng(0)
    p_logits, q_logits = rng.normal(size=(50, 7)) * 3, rng.normal(size=(50, 7)) * 3
    expected = np.mean(jensenshannon(_softmax(p_logits), _softmax(q_logits), axis=1) ** 2)
    got = js_divergence(torch.tensor(p_logits), torch.tensor(q_logits))
    assert got == pytest.approx(expected, rel=1e-9)


def test_textbook_js_hand_value_and_bound():
    # P = (1/2, 1/2), Q = (1, 0) in the limit: JS = ½·KL(P‖R) + ½·KL(Q‖R), R = (3/4, 1/4).
    p = torch.tensor([[0.0, 0.0]])
    q = torch.tensor([[60.0, -60.0]])
    kl_pr = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    kl_qr = math.log(1 / 0.75)
    assert js_divergence(p, q) == pytest.approx(0.5 * kl_pr + 0.5 * kl_qr, abs=1e-9)
    far = js_divergence(torch.tensor([[500.0, -500.0]]), torch.tensor([[-500.0, 500.0]]))
    assert far == pytest.approx(math.log(2), abs=1e-9)  # bounded by ln 2, reached when disjoint
    assert js_divergence(q, q) == pytest.approx(0.0, abs=1e-12)


def test_paper_js_is_the_swapped_kl_and_never_nan():
    rng = np.random.default_rng(1)
    p_logits, q_logits = rng.normal(size=(20, 5)), rng.normal(size=(20, 5))
    p, q = _softmax(p_logits), _softmax(q_logits)
    r = (p + q) / 2
    expected = np.mean(0.5 * (r * np.log(r / p)).sum(1) + 0.5 * (r * np.log(r / q)).sum(1))
    assert js_paper(torch.tensor(p_logits), torch.tensor(q_logits)) == pytest.approx(expected, rel=1e-9)
    extreme = js_paper(torch.tensor([[800.0, -800.0]]), torch.tensor([[-800.0, 800.0]]))
    assert math.isfinite(extreme) and extreme > math.log(2)  # unbounded, unlike the textbook JS


@pytest.mark.parametrize("attacker", ["catboost", "hist-gradient-boosting"])
def test_mia_counts_true_negatives_on_the_forget_set(attacker):
    # Members have confident logits, non-members flat ones; a forget set that looks like the
    # non-members must be called non-member (MIA near 1), one like the members near 0.
    g = torch.Generator().manual_seed(0)
    n, c = 200, 4
    labels = torch.arange(n) % c
    members = torch.nn.functional.one_hot(labels, c).float() * 8 + torch.randn(n, c, generator=g) * 0.1
    outsiders = torch.randn(n, c, generator=g) * 0.1
    unseen_like = membership_inference(members, labels, outsiders, labels, outsiders[:50],
                                       iterations=30, attacker=attacker)
    seen_like = membership_inference(members, labels, outsiders, labels, members[:50],
                                     iterations=30, attacker=attacker)
    assert unseen_like.mia > 0.9 and seen_like.mia < 0.1
    assert unseen_like.attacker_acc > 0.9
    assert unseen_like.n_members == unseen_like.n_nonmembers == n
    assert unseen_like.attacker == attacker


# --- pins: each test below fails when the formula it guards is changed (see docs/testing.md) ----

class LookupModel(torch.nn.Module):
    """A 'model' whose logits for a sample are a fixed row of a table: input x holds the sample's
    position, so every model's prediction on every sample is chosen by the test."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = torch.nn.Parameter(table.clone(), requires_grad=False)

    def forward(self, x):
        return self.table[x[:, 0].long()]


def lookup_split_and_models():
    """40 training samples (forget: positions 0..9), 20 test samples; three models whose forget
    and test accuracies are all different, so that swapping one set for another changes a metric."""
    import sftc

    n_train, n_test, classes = 40, 20, 2
    positions = torch.arange(n_train + n_test, dtype=torch.float32).unsqueeze(1)
    labels = torch.zeros(n_train + n_test, dtype=torch.long)
    split = sftc.Split.from_tensors(positions[:n_train], labels[:n_train], list(range(10)),
                                    test=(positions[n_train:], labels[n_train:]),
                                    num_classes=classes)

    def model(forget_right: int, test_right: int) -> LookupModel:
        table = torch.tensor([[-1.0, 1.0]]).repeat(n_train + n_test, 1)   # wrong everywhere
        table[10:n_train, 0] = 2.0                                          # right on retain
        table[:forget_right, 0] = 2.0                                       # forget: 0..9
        table[n_train:n_train + test_right, 0] = 2.0                        # test: 40..59
        return LookupModel(table)

    # accuracies: original forget 1.0 test 0.9; oracle forget 0.5 test 0.8; unlearned 0.3 / 0.6
    return split, model(10, 18), model(5, 16), model(3, 12)


def test_accuracy_errors_of_evaluate_use_test_for_eq5_7_and_forget_for_eq6():
    import sftc

    split, original, oracle, unlearned = lookup_split_and_models()
    m = sftc.evaluate(original, unlearned, split, oracle, device="cpu", mia=False,
                      unlearn_seconds=2.0, retrain_seconds=8.0)
    assert m["acc_forget"] == pytest.approx(0.3) and m["acc_test"] == pytest.approx(0.6)
    assert m["acc_err_retrain"] == pytest.approx(abs(0.6 - 0.8) / (0.6 + 0.8))   # Eq. 5
    assert m["acc_dis"] == pytest.approx(abs(0.3 - 0.5) / (0.3 + 0.5))           # Eq. 6
    assert m["acc_err_original"] == pytest.approx(abs(0.6 - 0.9) / (0.6 + 0.9))  # Eq. 7
    assert m["time_ratio"] == pytest.approx(2.0 / 8.0)
    assert m["reference"]["retrained"]["acc_forget"] == pytest.approx(0.5)
    assert m["reference"]["original"]["acc_test"] == pytest.approx(0.9)


def test_js_of_evaluate_compares_unlearned_with_original_on_the_forget_set_only():
    import sftc

    split, original, oracle, unlearned = lookup_split_and_models()
    m = sftc.evaluate(original, unlearned, split, oracle, device="cpu", mia=False)
    forget = torch.arange(10).float().unsqueeze(1)
    expected = js_divergence(unlearned(forget), original(forget))
    assert m["js"] == pytest.approx(expected, rel=1e-12)
    assert m["js_paper"] == pytest.approx(js_paper(unlearned(forget), original(forget)), rel=1e-12)
    same = sftc.evaluate(original, original, split, oracle, device="cpu", mia=False)
    assert same["js"] == 0.0 and same["acc_err_original"] == 0.0


class ScriptedAttacker:
    """A stand-in attacker: records what it was fit on and calls the first ``k`` forget rows
    members, where ``k`` grows with each fold (fold f: 2·f rows), so that the folds disagree."""

    made = []

    def __init__(self):
        self.fold = len(ScriptedAttacker.made)
        ScriptedAttacker.made.append(self)

    def fit(self, x, y):
        self.x, self.y = x, y
        return self

    def predict(self, x):
        out = np.zeros(len(x), dtype=int)
        if len(x) == 20:  # the forget set: members on the first 2·fold rows
            out[: 2 * self.fold] = 1
        else:             # validation rows: called members when their first feature is large
            out[:] = (x[:, 0] > 4).astype(int)
        return out


@pytest.fixture
def scripted(monkeypatch):
    import sftc.metrics.mia as mia

    ScriptedAttacker.made = []
    monkeypatch.setattr(mia, "_attacker_factory", lambda *a, **k: ScriptedAttacker)
    return ScriptedAttacker


def _population(n_per_class=(30, 30), test_per_class=(30, 30), seed=0):
    g = torch.Generator().manual_seed(seed)
    labels_r = torch.cat([torch.full((k,), c) for c, k in enumerate(n_per_class)])
    labels_t = torch.cat([torch.full((k,), c) for c, k in enumerate(test_per_class)])
    retain = torch.randn(len(labels_r), 2, generator=g) + 8.0
    test = torch.randn(len(labels_t), 2, generator=g)
    forget = torch.randn(20, 2, generator=g)
    return retain, labels_r, test, labels_t, forget


def test_mia_averages_true_negative_rates_over_every_fold(scripted):
    retain, yr, test, yt, forget = _population()
    result = membership_inference(retain, yr, test, yt, forget, folds=5)
    assert len(scripted.made) == 5
    # fold f calls 2·f of the 20 forget rows members: TN rates 1, .9, .8, .7, .6 -> mean .8
    assert result.mia == pytest.approx(np.mean([1 - 2 * f / 20 for f in range(5)]))
    assert result.folds == 5


def test_mia_default_features_are_logits_and_softmax_is_a_choice(scripted):
    retain, yr, test, yt, forget = _population()
    result = membership_inference(retain, yr, test, yt, forget)
    assert result.features == "logits"
    fitted = np.concatenate([a.x for a in scripted.made])
    assert np.abs(fitted).max() > 1.5          # raw logits, not probabilities
    scripted.made = []
    result = membership_inference(retain, yr, test, yt, forget, features="softmax")
    assert result.features == "softmax"
    fitted = np.concatenate([a.x for a in scripted.made])
    assert fitted.min() >= 0 and np.allclose(fitted.sum(1), 1.0)


def test_evaluate_defaults_to_logit_features():
    import sftc

    split, original, oracle, unlearned = lookup_split_and_models()
    m = sftc.evaluate(original, unlearned, split, oracle, device="cpu", mia_iterations=5)
    assert m["mia_features"] == "logits"


def test_mia_balances_members_and_non_members_per_class(scripted):
    # retain: 50 of class 0 and 10 of class 1; test: 10 of class 0 and 40 of class 1
    retain, yr, test, yt, forget = _population((50, 10), (10, 40))
    result = membership_inference(retain, yr, test, yt, forget, folds=2)
    assert result.n_members == result.n_nonmembers == 10 + 10     # min per class, both sides
    for attacker in scripted.made:
        members = attacker.y == 1
        # training folds hold the classes in equal shares on both sides (stratified halves)
        assert members.sum() == (~members).sum()


def test_balanced_attacker_cannot_learn_membership_from_the_class_alone():
    # Features carry only the class; membership is independent of it. Without per-class balancing
    # the class would predict membership (retain is mostly class 0, test mostly class 1).
    g = torch.Generator().manual_seed(0)
    yr = torch.cat([torch.zeros(90), torch.ones(10)]).long()
    yt = torch.cat([torch.zeros(10), torch.ones(90)]).long()
    as_logits = lambda y: torch.nn.functional.one_hot(y, 2).float() * 5 \
        + 0.01 * torch.randn(len(y), 2, generator=g)  # noqa: E731
    result = membership_inference(as_logits(yr), yr, as_logits(yt), yt, as_logits(yr[:20]),
                                  iterations=30, attacker="hist-gradient-boosting")
    assert result.attacker_acc < 0.65


def test_evaluate_returns_every_documented_key_and_times_only_when_given(scripted):
    import sftc
    from sftc.metrics import METRIC_KEYS

    split, original, oracle, unlearned = lookup_split_and_models()
    m = sftc.evaluate(original, unlearned, split, oracle, device="cpu", unlearn_seconds=1.0,
                      retrain_seconds=0.5)
    for key in METRIC_KEYS:
        assert isinstance(m[key], float), key
    assert m["time_ratio"] == pytest.approx(2.0)             # retrain under one second still counts
    assert m["mia_attacker"] == "catboost" and m["mia_features"] == "logits"
    untimed = sftc.evaluate(original, unlearned, split, device="cpu", mia=False,
                            unlearn_seconds=1.0)
    assert "retrain_seconds" not in untimed and "time_ratio" not in untimed
    assert "acc_err_retrain" not in untimed and "acc_dis" not in untimed   # no oracle
    assert sftc.evaluate(original, unlearned, split, device="cpu", mia=False,
                         retrain_seconds=0.0, unlearn_seconds=1.0).get("time_ratio") is None
    assert "unlearn_seconds" not in sftc.evaluate(original, unlearned, split, device="cpu",
                                                  mia=False, retrain_seconds=2.0)


def test_mia_defaults_are_the_papers_five_folds_and_catboost_at_1000_iterations(monkeypatch):
    import sftc.metrics.mia as mia

    made = []

    def factory(name, iterations, seed, *rest):
        made.append((name, iterations, seed))
        return ScriptedAttacker

    ScriptedAttacker.made = []
    monkeypatch.setattr(mia, "_attacker_factory", factory)
    retain, yr, test, yt, forget = _population()
    result = membership_inference(retain, yr, test, yt, forget)
    assert set(made) == {("catboost", 1000, 0)} and result.attacker == "catboost"
    assert len(ScriptedAttacker.made) == 5 and result.folds == 5
    ScriptedAttacker.made = []
    assert membership_inference(retain, yr, test, yt, forget, folds=3).folds == 3
    assert len(ScriptedAttacker.made) == 3


def test_balanced_sample_draws_distinct_members_and_non_members():
    from sftc.metrics.mia import balanced_sample

    retain = np.array([0] * 30 + [1] * 5)
    test = np.array([0] * 10 + [1] * 20)
    members, nonmembers = balanced_sample(retain, test, 2, seed=0)
    assert len(set(members.tolist())) == len(members) == 15
    assert len(set(nonmembers.tolist())) == len(nonmembers) == 15
    assert np.bincount(retain[members]).tolist() == np.bincount(test[nonmembers]).tolist() == [10, 5]


def test_the_catboost_attack_is_deterministic_for_a_seed():
    retain, yr, test, yt, forget = _population()
    a = membership_inference(retain, yr, test, yt, forget, iterations=20, seed=3)
    b = membership_inference(retain, yr, test, yt, forget, iterations=20, seed=3)
    assert (a.mia, a.attacker_acc) == (b.mia, b.attacker_acc)


def test_js_of_no_samples_is_zero():
    empty = torch.zeros(0, 3)
    assert js_divergence(empty, empty) == 0.0 and js_paper(empty, empty) == 0.0

@pytest.mark.slow
def test_evaluator_gives_evaluate_models_numbers_for_every_row(digits_split, digits_original,
                                                               digits_retrained, monkeypatch):
    """One evaluator for many models (references' logits once, attackers on a thread pool, one
    thread each) gives exactly what evaluate_models gives row by row with the attackers fitted
    one after another on all cores, as before."""
    from sftc.metrics import Evaluator, evaluate_models

    original, oracle = digits_original.model, digits_retrained.model
    unlearned = sftc.unlearn(original, digits_split, "ft", epochs=1, device="cpu",
                             progress=False, accel="off").model
    common = dict(device="cpu", mia_iterations=20, seed=0)
    rows = [(original, None), (oracle, 1.5), (unlearned, 0.25)]
    before = [evaluate_models(original, model, digits_split, oracle, unlearn_seconds=s,
                              retrain_seconds=2.0, mia_workers=1, **common)
              for model, s in rows]
    calls = []
    subset_logits = sftc.metrics.evaluate.subset_logits

    def counting(model, *args, **kwargs):
        calls.append(model)
        return subset_logits(model, *args, **kwargs)

    monkeypatch.setattr(sftc.metrics.evaluate, "subset_logits", counting)
    with Evaluator(original, digits_split, oracle, workers=2, **common) as evaluator:
        pending = [evaluator.submit(model, s, 2.0) for model, s in rows]
        after = [p.result() for p in pending]
    assert after == before
    assert [list(a) for a in after] == [list(b) for b in before]  # same keys, same order
    assert len(calls) == 3  # each model's logits once: the original and the oracle are reused


def test_the_attackers_are_built_as_configured():
    # The attacker gets the run's iterations and seed, CatBoost stays silent and writes no
    # catboost_info/ folder into the user's working directory.
    import sftc.metrics.mia as mia

    cat = mia._attacker_factory("catboost", 17, 3, 2)().get_params()
    assert cat == {"iterations": 17, "random_seed": 3, "verbose": 0, "thread_count": 2,
                   "allow_writing_files": False}
    hgb = mia._attacker_factory("hist-gradient-boosting", 17, 3, 2)()
    assert (hgb.max_iter, hgb.random_state) == (17, 3)


def test_the_attack_plan_defaults_are_the_papers():
    # Section 5.4 as the paper's code runs it: CatBoost on the logits, 5 folds, 1000 iterations,
    # seed 0, when plan_attack (the evaluator's entry) is called without options.
    import sftc.metrics.mia as mia

    g = torch.Generator().manual_seed(0)
    labels = torch.arange(40) % 4
    logits = torch.randn(40, 4, generator=g)
    plan = mia.plan_attack(logits, labels, logits * 2, labels, logits[:8])
    assert (plan.features, plan.attacker, plan.iterations, plan.seed, len(plan.folds)) == \
        ("logits", "catboost", 1000, 0, 5)


def test_the_evaluator_leaves_torch_the_cores_its_attackers_do_not_take(tiny_split, monkeypatch):
    # two attackers on a 2-core machine: torch on one thread while they may run, then restored
    import sftc.metrics.evaluate as evaluate_module
    from sftc.metrics import Evaluator

    monkeypatch.setattr(evaluate_module, "available_cores", lambda: 2)
    model = sftc.build_model("small-cnn", 1, 4)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with Evaluator(model, tiny_split, device="cpu", workers=2, mia_iterations=5):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with Evaluator(model, tiny_split, device="cpu", mia=False):   # no attackers, no change
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
