"""Per-example membership attacks and the NeurIPS forgetting score, against values worked out by
hand, closed forms, scipy/scikit-learn, and a plain re-statement of the challenge's definition."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import log_softmax
from scipy.stats import mannwhitneyu, norm

from sftc.errors import SftcError
from sftc.metrics.attacks import (auc, check_fprs, example_epsilon, forgetting_quality,
                                  forgetting_score, lira_offline, lira_online,
                                  logit_scaled_confidence, mann_whitney, resolvable, rmia,
                                  roc_figures, smallest_p, tpr_at_fpr, true_class_log_prob, u_lira)
from sftc.metrics.attacks.lira import gaussian_fit
from sftc.metrics.attacks.neurips import DELTA, bucket_points, null_quality

# -- signals -------------------------------------------------------------------------------------


def test_logit_scaled_confidence_by_hand_and_against_the_challenge_formula():
    # p = (3/5, 1/5, 1/5): log(3/5) - log(2/5) = log 3 - log 2
    z = np.array([[math.log(3), 0.0, 0.0]])
    assert logit_scaled_confidence(z, [0])[0] == pytest.approx(math.log(1.5), abs=1e-12)
    assert logit_scaled_confidence(np.zeros((1, 2)), [1])[0] == pytest.approx(0.0)
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(50, 10)) * 4, rng.integers(0, 10, 50)
    probs = np.exp(log_softmax(logits, axis=1))
    correct = probs[np.arange(50), labels]
    expected = np.log(correct + 1e-45) - np.log(1 - correct + 1e-45)
    assert np.allclose(logit_scaled_confidence(logits, labels), expected, atol=1e-8)


def test_logit_scaled_confidence_stays_exact_where_probabilities_saturate():
    # p_y = 1 - e^-2000 in float64 is 1.0; the formula still gives z_y - z_other exactly
    assert logit_scaled_confidence(np.array([[1000.0, -1000.0]]), [0])[0] == 2000.0
    assert logit_scaled_confidence(np.array([[1000.0, -1000.0]]), [1])[0] == -2000.0
    batch = logit_scaled_confidence(np.zeros((3, 4, 5)), [0, 1, 2, 3])
    assert batch.shape == (3, 4) and np.allclose(batch, math.log(1 / 4))


def test_true_class_log_prob_is_log_softmax():
    rng = np.random.default_rng(1)
    logits, labels = rng.normal(size=(20, 6)), rng.integers(0, 6, 20)
    assert np.allclose(true_class_log_prob(logits, labels),
                       log_softmax(logits, axis=1)[np.arange(20), labels])
    assert np.allclose(true_class_log_prob(logits, labels, temperature=2.0),
                       log_softmax(logits / 2, axis=1)[np.arange(20), labels])


def test_signals_refuse_mismatched_labels():
    with pytest.raises(SftcError, match="one label per sample"):
        logit_scaled_confidence(np.zeros((3, 2)), [0, 1])


# -- AUC, TPR at FPR, significance ---------------------------------------------------------------

def test_auc_by_hand_counts_ties_as_half():
    # pairs (3,1) (3,2) (2,1) win, (2,2) ties: (3 + 0.5) / 4
    assert auc([3, 2], [1, 2]) == pytest.approx(0.875)


def test_auc_of_gaussian_members_matches_the_closed_form():
    rng = np.random.default_rng(2)
    pos, neg = rng.normal(1.0, 1.0, 20000), rng.normal(0.0, 1.0, 20000)
    assert auc(pos, neg) == pytest.approx(norm.cdf(1 / math.sqrt(2)), abs=0.01)


def test_tpr_at_fpr_by_hand_and_unresolvable_rates():
    neg = np.arange(100.0)                       # 100 negatives: 1 % is resolvable, 0.1 % is not
    pos = np.array([99.5, 98.5, 50.0])
    assert tpr_at_fpr(pos, neg, 0.01) == pytest.approx(2 / 3)   # one false positive (99)
    assert tpr_at_fpr(pos, neg, 0.001) is None
    assert resolvable(0.01, 100) and not resolvable(0.001, 999) and resolvable(0.001, 1000)
    figures = roc_figures(pos, neg)
    assert figures["tpr_at_fpr"] == {"0.01": pytest.approx(2 / 3), "0.001": None}


def test_explicit_unresolvable_rates_are_refused():
    assert check_fprs([0.01], 100) == (0.01,)
    with pytest.raises(SftcError, match="0.001 cannot be resolved with 360 never-seen samples"):
        check_fprs([0.001], 360)
    with pytest.raises(SftcError, match="strictly between 0 and 1"):
        check_fprs([1.5], 360)


def test_mann_whitney_matches_scipy_and_the_two_sided_p_doubles_the_smaller():
    rng = np.random.default_rng(3)
    pos, neg = rng.normal(0.3, 1, 80), rng.normal(0, 1, 300)
    sig = mann_whitney(pos, neg)
    assert sig.p_greater == pytest.approx(mannwhitneyu(pos, neg, alternative="greater").pvalue)
    assert sig.p_less == pytest.approx(mannwhitneyu(pos, neg, alternative="less").pvalue)
    assert sig.p_two_sided == pytest.approx(2 * min(sig.p_greater, sig.p_less))
    u = mannwhitneyu(pos, neg).statistic
    assert auc(pos, neg) == pytest.approx(u / (80 * 300))          # the test's statistic is the AUC
    assert mann_whitney([1, 1], [1, 1, 1]).p_two_sided == 1.0


def test_smallest_p_is_perfect_separation():
    assert smallest_p(3, 3) == pytest.approx(1 / math.comb(6, 3))  # exact for small samples
    assert smallest_p(1, 360) > 0.001 and smallest_p(109, 360) < 1e-10


# -- LiRA ----------------------------------------------------------------------------------------

def test_lira_online_hand_value_with_per_example_variance():
    # IN [1, 3]: mean 2, sd √2; OUT [-1, 1]: mean 0, sd √2; target 2:
    # log N(2; 2, 2) - log N(2; 0, 2) = 0 + (2 - 0)² / (2 · 2) = 1
    refs = np.array([[1.0], [3.0], [-1.0], [1.0]])
    mask = np.array([[True], [True], [False], [False]])
    assert lira_online([2.0], refs, mask, variance="per-example")[0] == pytest.approx(1.0)
    # offline: log Pr[Z <= 0], Z ~ N(0, 2) = log ½
    assert lira_offline([0.0], refs, mask, variance="per-example")[0] == pytest.approx(math.log(0.5))
    # away from the mean the OUT spread matters: log Pr[Z <= 1], Z ~ N(0, 2) = log Φ(1 / √2)
    assert lira_offline([1.0], refs, mask, variance="per-example")[0] == \
        pytest.approx(norm.logcdf(1 / math.sqrt(2)))


def test_lira_global_variance_is_the_pooled_within_sample_variance():
    refs = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 6.0]])
    mask = np.array([[True, True], [True, True], [False, True]])
    mean, sd = gaussian_fit(refs, mask, "global")
    # squared deviations: sample 0 (1, 3): 2; sample 1 (0, 0, 6): 24; dof 1 + 2 = 3
    assert mean == pytest.approx([2.0, 2.0]) and sd == pytest.approx([math.sqrt(26 / 3)] * 2)


def test_lira_global_variance_is_taken_around_each_samples_own_mean():
    # two samples with different means: deviations from each sample's own mean (1, 3 -> 2 and
    # 11, 13 -> 12) give 2 + 2 over dof 2; around the grand mean (7) they would give 104 / 3
    refs = np.array([[1.0, 11.0], [3.0, 13.0]])
    mask = np.ones((2, 2), dtype=bool)
    mean, sd = gaussian_fit(refs, mask, "global")
    assert mean == pytest.approx([2.0, 12.0]) and sd == pytest.approx([math.sqrt(2.0)] * 2)


def test_lira_separates_gaussian_members_as_the_closed_form_says():
    rng = np.random.default_rng(5)
    n, k = 4000, 16
    mask = np.zeros((k, n), dtype=bool)
    mask[::2] = True
    refs = rng.normal(0, 1, (k, n)) + 2.0 * mask
    member = rng.random(n) < 0.5
    target = rng.normal(0, 1, n) + 2.0 * member
    scores = lira_online(target, refs, mask)
    # equal variances: the ratio is linear in the target, AUC = Φ(2 / √2)
    assert auc(scores[member], scores[~member]) == pytest.approx(norm.cdf(math.sqrt(2)), abs=0.02)


def test_lira_refuses_too_few_references():
    refs, mask = np.zeros((2, 3)), np.array([[True] * 3, [False] * 3])
    with pytest.raises(SftcError, match="online LiRA needs at least 2 IN.*--references 4"):
        lira_online(np.zeros(3), refs, mask)


# -- RMIA ----------------------------------------------------------------------------------------

def test_rmia_online_and_offline_by_hand():
    log = np.log
    refs_x = log(np.array([[0.8], [0.4]]))           # reference 0 trained on x, reference 1 not
    mask = np.array([[True], [False]])
    refs_z = log(np.array([[0.5, 0.5, 0.5], [0.5, 0.3, 0.9]]))
    target_z = log(np.array([0.5, 0.6, 0.9]))
    # online: Pr(x) = (0.8 + 0.4) / 2 = 0.6, ratio 0.66 / 0.6 = 1.1; Pr(z) = (0.5, 0.4, 0.7),
    # ratios (1.0, 1.5, 1.2857): LR(x, z) = (1.1, 0.733, 0.856) -> one of three reaches γ = 1
    got = rmia(log([0.66]), refs_x, mask, target_z, refs_z)
    assert got[0] == pytest.approx(1 / 3)
    # offline, a = 0.3: Pr(x) = (1.3 · 0.4 + 0.7) / 2 = 0.61, ratio 1.082; Pr(z) = (0.675, 0.61,
    # 0.805), ratios (0.741, 0.984, 1.118): x beats the first two
    got = rmia(log([0.66]), refs_x, mask, target_z, refs_z, offline=True, a=0.3)
    assert got[0] == pytest.approx(2 / 3)
    # γ = 1.2: LR(x, z) >= 1.2 for none online
    assert rmia(log([0.66]), refs_x, mask, target_z, refs_z, gamma=1.2)[0] == 0.0


def test_rmia_marginal_probabilities_by_hand():
    # Pr(x) itself, not only the ranks it induces (Zarifzadeh et al., eq. 4 and the offline
    # approximation ½((1 + a) Pr_OUT(x) + (1 − a))).
    from sftc.metrics.attacks.rmia import log_marginal

    refs = np.log(np.array([[0.8, 0.2], [0.4, 0.6], [0.1, 0.7]]))
    mask = np.array([[True, False], [False, True], [False, False]])
    # online: ½(mean IN + mean OUT) = ½(0.8 + 0.25), ½(0.6 + 0.45)
    assert np.exp(log_marginal(refs, mask, offline=False)) == pytest.approx([0.525, 0.525])
    # offline, a = 0.3: ½((1 + a) · mean OUT + (1 − a))
    assert np.exp(log_marginal(refs, mask, offline=True, a=0.3)) == \
        pytest.approx([(1.3 * 0.25 + 0.7) / 2, (1.3 * 0.45 + 0.7) / 2])
    # a population nobody trained on: the plain mean over every reference
    assert np.exp(log_marginal(refs, None, offline=False)) == pytest.approx([13 / 30, 0.5])
    assert np.exp(log_marginal(refs, None, offline=True, a=0.3)) == \
        pytest.approx([(1.3 * 13 / 30 + 0.7) / 2, (1.3 * 0.5 + 0.7) / 2])
    # a = 1 (the OUT models' mean alone, no (1 − a) term) is allowed
    assert np.exp(log_marginal(refs, mask, offline=True, a=1.0)) == pytest.approx([0.25, 0.45])


def test_rmia_refuses_an_empty_population_and_missing_out_models():
    with pytest.raises(SftcError, match="population"):
        rmia([0.0], np.zeros((2, 1)), np.array([[True], [False]]), [], np.zeros((2, 0)))
    with pytest.raises(SftcError, match="OUT reference"):
        rmia([0.0], np.zeros((2, 1)), np.array([[True], [True]]), [0.0], np.zeros((2, 1)))


# -- the NeurIPS 2023 forgetting score -------------------------------------------------------------

def reference_epsilon(u, r, delta=DELTA, by="median"):
    """The challenge's ε restated plainly (loops, booleans), to check the vectorised one
    (``by``: how the positive group is chosen; the definition takes the larger median)."""
    u, r = np.asarray(u, float), np.asarray(r, float)
    centre = np.median if by == "median" else np.mean
    pos, neg = (r, u) if centre(r) > centre(u) else (u, r)
    small, large = sorted([np.ptp(pos), np.ptp(neg)])
    if large > 0 and small / large < 0.01:
        return 50.0
    rates = []
    allc = np.concatenate([pos, neg])
    for t in np.linspace(allc.min(), allc.max(), int(np.ceil((allc.max() - allc.min()) * 100))):
        rates.append((np.mean(neg >= t), np.mean(pos < t)))
    peaky, other = (neg, pos) if np.ptp(pos) >= np.ptp(neg) else (pos, neg)
    w = np.ptp(peaky)
    lo, hi = peaky.min() + w - 2.0, peaky.max() + 2.0
    for right in np.linspace(lo, hi, int(np.ceil((hi - lo) * 100))):
        left = np.linspace(right - w - 2, right - w + 2, 400)[:, None]
        inside_p = (left <= peaky) & (peaky <= right)       # [400 lefts, N]
        inside_o = (left <= other) & (other <= right)
        rates += zip(inside_o.mean(1), (~inside_p).mean(1))
    best = None
    for fpr, fnr in rates:
        if fpr == 0 and fnr == 0:
            eps = math.inf
        elif fpr == 0 or fnr == 0:
            continue
        else:
            terms = [math.log(1 - delta - fpr) - math.log(fnr) if 1 - delta - fpr > 0 else None,
                     math.log(1 - delta - fnr) - math.log(fpr) if 1 - delta - fnr > 0 else None]
            terms = [t for t in terms if t is not None]
            if not terms:
                continue
            eps = max(0.0, max(terms))
        best = eps if best is None else max(best, eps)
    return 0.0 if best is None else min(max(best, 0.0), 50.0)


def test_epsilon_hand_cases():
    # identical samples: every threshold has FPR = TPR, so ε = 0
    assert example_epsilon([0, 1, 2, 3], [0, 1, 2, 3]) == 0.0
    # fully separated: FPR = FNR = 0 somewhere, ε = ∞, capped at 50
    assert example_epsilon([0, 1, 2, 3], [10, 11, 12, 13]) == 50.0
    # overlap of one: the best thresholds have FPR = FNR = 1/4: ε = log((3/4 - δ) / (1/4))
    assert example_epsilon([0, 1, 2, 3], [2.5, 3.5, 4.5, 5.5]) == pytest.approx(
        math.log((0.75 - DELTA) / 0.25), abs=1e-12)
    # a collapsed group (spread below 1 % of the other's): ε = 50 outright
    assert example_epsilon([1, 1, 1, 1], [0, 1, 2, 3]) == 50.0


def test_the_positive_group_is_the_one_with_the_larger_median_not_mean():
    # u: median 5 but mean 2.6 (one very low value); r: median 3, mean 3. By median u is the
    # positive group; by mean r would be, and a threshold "positive when ≥ t" on r finds another
    # best split. The definition (metric.py) takes the median.
    u, r = np.array([-10.0, 5.0, 5.0, 5.0, 8.0]), np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert np.median(u) > np.median(r) and u.mean() < r.mean()
    assert example_epsilon(u, r) == pytest.approx(reference_epsilon(u, r), abs=1e-9)
    assert example_epsilon(u, r) == pytest.approx(reference_epsilon(u, r, by="median"), abs=1e-9)
    assert example_epsilon(u, r) != pytest.approx(reference_epsilon(u, r, by="mean"), abs=1e-6)


@pytest.mark.slow
def test_epsilon_matches_the_plain_definition_on_random_groups():
    rng = np.random.default_rng(6)
    for n in (4, 7):
        for shift in (0.0, 0.7, 2.0):
            u, r = rng.normal(0, 1, n), rng.normal(shift, 1, n)
            assert example_epsilon(u, r) == pytest.approx(reference_epsilon(u, r), abs=1e-9)


def test_bucket_points_by_hand():
    # N = 16: buckets of width 0.5 up to ceil(ln 15) = 3, worth 1, 1/2, 1/4, 1/8, 1/16, 1/32
    assert bucket_points([0, 0.49, 0.5, 1.2, 2.9, 3.0, 50], 16).tolist() == \
        [1, 1, 0.5, 0.25, 1 / 32, 0, 0]
    # N = 4: ceil(ln 3) = 2, four buckets
    assert bucket_points([1.0986, 1.99, 2.0], 4).tolist() == [0.25, 0.125, 0]


def test_forgetting_quality_and_score_hand_cases():
    same = np.tile(np.array([[0.0], [1.0], [2.0], [3.0]]), (1, 5))
    assert forgetting_quality(same, same.copy()).quality == 1.0
    assert forgetting_quality(same, same + 10).quality == 0.0
    mixed = forgetting_quality(np.array([[0, 0], [1, 1], [2, 2], [3, 3.0]]),
                               np.array([[0, 2.5], [1, 3.5], [2, 4.5], [3, 5.5]]))
    assert mixed.quality == pytest.approx((1 + 0.25) / 2)           # ε = 0 and ε = 1.0986
    # final score: quality × (0.95 / 1.0) × (0.8 / 0.8)
    assert forgetting_score(0.5, [0.9, 1.0], [1.0, 1.0], [0.8, 0.8], [0.9, 0.7]) == \
        pytest.approx(0.475)


def test_forgetting_quality_refuses_too_few_models():
    with pytest.raises(SftcError, match="at least 3"):
        forgetting_quality(np.zeros((2, 4)), np.ones((2, 4)))


def test_a_perfect_unlearner_scores_well_below_one_with_few_models():
    # two groups from one distribution: chance differences give ε ≈ log 5 at N = 16
    assert 0.08 < null_quality(16, n_examples=60) < 0.3


# -- U-LiRA ------------------------------------------------------------------------------------

def test_u_lira_tells_apart_only_what_differs():
    rng = np.random.default_rng(7)
    same = u_lira(rng.normal(size=(40, 200)), rng.normal(size=(40, 200)))
    assert same.auc == pytest.approx(0.5, abs=0.04)
    assert same.accuracy == pytest.approx(0.5, abs=0.04)
    apart = u_lira(np.array([[0.0], [1.0], [2.0]]), np.array([[10.0], [11.0], [12.0]]))
    assert apart.auc == 1.0 and apart.accuracy == 1.0
    with pytest.raises(SftcError, match="at least 3"):
        u_lira(np.zeros((2, 3)), np.zeros((5, 3)))
