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
