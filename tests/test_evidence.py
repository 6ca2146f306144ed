"""The evidence statistics: matched comparison, the interval, the margin, the three verdicts and
the class test, against hand values, plain restatements and scipy, on synthetic scores built to
break what each guards."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest, norm

from sftc.errors import SftcError
from sftc.metrics.attacks import (AttackView, NeverSeen, auc, auc_interval, class_test,
                                  create_attack, judge, list_attacks, margin_for, match_strata,
                                  needed_samples, parse_margin, removed_classes, stratified_auc)
from sftc.metrics.attacks.class_level import clopper_pearson


def delong_plain(pos, neg):
    """DeLong's variance restated with explicit loops (one stratum)."""
    psi = np.array([[1.0 if p > q else 0.5 if p == q else 0.0 for q in neg] for p in pos])
    v10, v01 = psi.mean(1), psi.mean(0)
    return psi.mean(), v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg)


# -- the matched comparison --------------------------------------------------------------------

def test_one_stratum_gives_the_auc_and_delongs_variance():
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(0.5, 1, 40).round(1), rng.normal(0, 1, 60).round(1)  # with ties
    strata = match_strata(np.zeros(40), np.zeros(40), np.zeros(60), np.zeros(60),
                          by_difficulty=False)
    estimate, variance = stratified_auc(pos, neg, strata)
    expected, expected_var = delong_plain(pos, neg)
    assert estimate == pytest.approx(auc(pos, neg)) == pytest.approx(expected)
    assert variance == pytest.approx(expected_var)


def test_strata_combine_as_weighted_aucs_with_squared_weights():
    rng = np.random.default_rng(1)
    pf = [rng.normal(size=30), rng.normal(1, 1, 10)]
    pn = [rng.normal(size=20), rng.normal(size=25)]
    strata = match_strata(np.repeat([0, 1], [30, 10]), np.zeros(40),
                          np.repeat([0, 1], [20, 25]), np.zeros(45), by_difficulty=False)
    estimate, variance = stratified_auc(np.concatenate(pf), np.concatenate(pn), strata)
    parts = [delong_plain(p, n) for p, n in zip(pf, pn)]
    w = np.array([30, 10]) / 40
    assert estimate == pytest.approx(w @ [a for a, _ in parts])
    assert variance == pytest.approx((w ** 2) @ [v for _, v in parts])


def test_matching_removes_a_difference_that_only_comes_from_difficulty():
    """D_f drawn from the hard end: unmatched it looks less familiar than never-seen data; within
    difficulty strata a model that never saw it scores it as never-seen."""
    rng = np.random.default_rng(2)
    difficulty = rng.normal(size=4000)
    score = difficulty + rng.normal(0, 0.5, 4000)          # the attack follows difficulty
    forget = np.argsort(difficulty)[:300:3]                # 100 of the hardest 300
    rest = np.setdiff1d(np.arange(4000), forget)[::4]
    assert auc(score[forget], score[rest]) < 0.2
    strata = match_strata(np.zeros(forget.size), difficulty[forget], np.zeros(rest.size),
                          difficulty[rest], max_bins=50)
    matched, _ = stratified_auc(score[forget], score[rest], strata)
    assert abs(matched - 0.5) < 0.1


def test_class_matching_compares_each_forget_sample_only_within_its_class():
    # class 1 scores high for every model; D_f is all of class 1: unmatched AUC 1, matched 0.5
    pos = np.full(20, 5.0)
    neg = np.concatenate([np.zeros(30), np.full(30, 5.0)])
    strata = match_strata(np.ones(20), np.zeros(20), np.repeat([0, 1], 30), np.zeros(60),
                          by_difficulty=False)
    assert auc(pos, neg) == pytest.approx(0.75)
    assert stratified_auc(pos, neg, strata)[0] == pytest.approx(0.5)


def test_strata_by_hand():
    # class 0: six candidates at difficulty 0..5, per_bin 2 -> 3 bins cut at the 1/3 and 2/3
    # quantiles (1.667, 3.333); reach 0.1 of the range 5 -> forget samples within [-0.5, 5.5]
    # class 1: three candidates, 3 // 2 = 1 bin (stratum 3)
    strata = match_strata([0, 0, 0, 0, 0, 0, 1], [0.5, 2.0, 4.9, 5.4, 5.6, -0.6, 9.0],
                          [0] * 6 + [1] * 3, [0, 1, 2, 3, 4, 5, 7, 8, 9], per_bin=2,
                          max_bins=3, reach=0.1)
    assert strata.forget.tolist() == [0, 1, 2, 2, -1, -1, 3]
    assert strata.candidates.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 3]
    assert strata.count == 4
    assert strata.describe() == {"strata": 4, "matched_forget": 5, "unmatched_forget": 2,
                                 "comparison_samples": 9, "by": "class and difficulty",
                                 "per_bin": 2, "max_bins": 3, "reach": 0.1}
    # a class of D_f with no candidate: unmatched, and its candidates-less stratum never exists
    lone = match_strata([2], [0.0], [0, 0], [0.0, 1.0])
    assert lone.forget.tolist() == [-1] and lone.candidates.tolist() == [-1, -1]
    with pytest.raises(SftcError, match="one class and one difficulty"):
        match_strata([0, 1], [0.0], [0], [0.0])
    with pytest.raises(SftcError, match="per_bin"):
        match_strata([0], [0.0], [0], [0.0], reach=-1)
    smallest = match_strata([0, 0], [0.0, 0.1], [0, 0], [0.0, 1.0], per_bin=1, max_bins=1,
                            reach=0.0)                     # the smallest settings are allowed
    assert smallest.forget.tolist() == [0, 0] and smallest.count == 1


def test_strata_by_hand_off_zero_past_a_class_without_candidates_and_by_class_only():
    # class 1: candidates 10.0..10.4 (range 0.4, reach 0.1 -> window [9.96, 10.44]), 2 bins cut
    # at their median 10.15; class 2 has no candidate (the classes after it are still matched);
    # class 3: two candidates, one bin
    forget_class, forget_difficulty = [1, 1, 1, 1, 2, 3], [10.05, 9.99, 10.3, 10.5, 0.0, 10.0]
    cand_class, cand_difficulty = [1, 1, 1, 1, 3, 3], [10.0, 10.1, 10.2, 10.4, 10.0, 10.0]
    strata = match_strata(forget_class, forget_difficulty, cand_class, cand_difficulty,
                          per_bin=2, max_bins=2, reach=0.1)
    assert strata.forget.tolist() == [0, 0, 1, -1, -1, 2]
    assert strata.candidates.tolist() == [0, 0, 1, 1, 2, 2] and strata.count == 3
    by_class = match_strata(forget_class, forget_difficulty, cand_class, cand_difficulty,
                            per_bin=2, max_bins=2, reach=0.1, by_difficulty=False)
    assert by_class.forget.tolist() == [0, 0, 0, 0, -1, 1]     # difficulty plays no part
    assert by_class.candidates.tolist() == [0, 0, 0, 0, 1, 1] and by_class.count == 2
    assert by_class.describe()["by"] == "class"
    # tied candidates: the median edge is 0, every candidate falls right of it, bin 0 is empty,
    # and the forget sample that falls there is unmatched rather than compared with nothing
    tied = match_strata([0, 0], [-0.05, 0.5], [0, 0, 0, 0], [0.0, 0.0, 0.0, 1.0], per_bin=2,
                        max_bins=2, reach=0.1)
    assert tied.forget.tolist() == [-1, 1] and tied.candidates.tolist() == [1, 1, 1, 1]


def test_a_stratum_of_one_sample_takes_the_variance_bound():
    # one positive against one negative: ψ's variance is unknown and bounded by 1/4 per side
    strata = match_strata([0], [0.0], [0], [0.0], by_difficulty=False)
    assert stratified_auc([1.0], [0.0], strata) == (1.0, 0.25 / 1 + 0.25 / 1)


def test_forget_samples_without_comparable_never_seen_samples_are_left_out():
    strata = match_strata(np.array([0, 0, 2]), np.array([0.0, 50.0, 0.0]),
                          np.zeros(20), np.linspace(-1, 1, 20))
    assert strata.forget.tolist()[1:] == [-1, -1]          # too far, and a class with no sample
    assert strata.describe()["unmatched_forget"] == 2


# -- interval, margin, verdict -----------------------------------------------------------------

def test_the_interval_counts_the_examples_and_the_never_seen_spread():
    null = NeverSeen.from_aucs([0.48, 0.52, 0.50, 0.46, 0.54])
    i = auc_interval(0.6, 0.03 ** 2, null, alpha=0.05)
    var_null = np.var([0.48, 0.52, 0.50, 0.46, 0.54], ddof=1) * (1 + 1 / 5)
    se = math.sqrt(0.03 ** 2 + var_null)
    assert i.se == pytest.approx(se) and i.se_null == pytest.approx(math.sqrt(var_null))
    z = norm.ppf(0.95)
    assert (i.low, i.high) == pytest.approx((0.6 - z * se, 0.6 + z * se))
    assert i.level == pytest.approx(0.5) and i.confidence == pytest.approx(0.9)
    # a wider spread of never-seen models widens the interval, whatever the examples say
    wide = auc_interval(0.6, 0.03 ** 2, NeverSeen.from_aucs([0.4, 0.6, 0.5, 0.45, 0.55]))
    assert wide.high - wide.low > i.high - i.low
    with pytest.raises(SftcError, match="at least 3"):
        NeverSeen.from_aucs([0.5, 0.5])


def _interval(estimate, se, level=0.5, alpha=0.05):
    return auc_interval(estimate, se ** 2, NeverSeen(level, 0.0, (level,) * 4), alpha)


def test_the_margin_is_a_share_of_the_originals_shown_excess():
    original = _interval(0.80, 0.02)                       # low end 0.80 - 1.645 · 0.02
    m = margin_for(original, "80%")
    assert m.delta == pytest.approx(0.2 * (original.low - 0.5))
    assert (m.rule, m.share, m.original_low) == ("share of the original's excess", 0.8,
                                                 original.low)
    assert margin_for(original, "50%").delta == pytest.approx(0.5 * (original.low - 0.5))
    assert margin_for(original, "0.05").delta == 0.05 and margin_for(original, "0.05").rule == \
        "absolute"
    assert margin_for(_interval(0.52, 0.05), "80%").delta == 0.0   # no shown excess: nothing
    for bad in ("0", "120%", "0.7", "lots"):
        with pytest.raises(SftcError, match="--margin"):
            parse_margin(bad)


def test_three_verdicts_on_both_sides_of_the_never_seen_level():
    margin = margin_for(_interval(0.9, 0.01), "0.05")
    inside = judge(_interval(0.51, 0.01), margin, n_forget=100, n_comparison=300)
    above = judge(_interval(0.70, 0.02), margin, n_forget=100, n_comparison=300)
    below = judge(_interval(0.30, 0.02), margin, n_forget=100, n_comparison=300)
    straddle = judge(_interval(0.56, 0.03), margin, n_forget=100, n_comparison=300)
    lowside = judge(_interval(0.49, 0.04), margin, n_forget=100, n_comparison=300)
    assert inside.verdict == "forgotten"
    assert inside.certifiable_margin == pytest.approx(inside.interval.high - 0.5)
    assert inside.margin is margin and inside.interval.estimate == 0.51
    assert above.certifiable_margin == pytest.approx(0.5 - above.interval.low + 0.4)  \
        or above.certifiable_margin == pytest.approx(above.interval.high - 0.5)
    assert above.margin is margin and below.margin is margin and straddle.margin is margin
    record = above.to_dict()
    assert record["verdict"] == "not-forgotten" and record["direction"] == "remembered"
    assert record["interval"]["estimate"] == 0.70 and record["margin"]["delta"] == 0.05
    assert record["certifiable_margin"] == above.certifiable_margin and record["needed"] is None
    assert set(record) == {"verdict", "direction", "reason", "interval", "margin",
                           "certifiable_margin", "needed", "class_test"}
    assert (above.verdict, above.direction) == ("not-forgotten", "remembered")
    assert (below.verdict, below.direction) == ("not-forgotten", "over-forgotten")
    assert straddle.verdict == "not-proven"
    assert lowside.verdict == "not-proven"               # the lower end crosses L − δ
    # the margin is applied on both sides: a model as far below as "inside" is above, forgotten
    assert judge(_interval(0.49, 0.01), margin, n_forget=100, n_comparison=300).verdict == \
        "forgotten"


def test_without_power_nothing_is_claimed_either_way():
    margin = margin_for(_interval(0.9, 0.01), "0.05")
    far = _interval(0.75, 0.01)
    assert judge(far, margin, n_forget=100, n_comparison=300, power=False).verdict == "not-proven"
    assert judge(_interval(0.5, 0.001), margin, n_forget=100, n_comparison=300,
                 power=False).verdict == "not-proven"
    none = margin_for(_interval(0.52, 0.05), "80%")                 # δ = 0: no shown excess
    assert judge(far, none, n_forget=100, n_comparison=300).verdict == "not-proven"


def test_each_verdict_keeps_what_it_rests_on_and_says_why():
    """The record of a verdict is the claim's evidence: the interval, the margin, the tightest
    certifiable margin, and a reason naming the side (report/audit.py prints these)."""
    margin = margin_for(_interval(0.9, 0.01), "0.05")
    far = _interval(0.75, 0.01)
    weak = judge(far, margin, n_forget=100, n_comparison=300, power=False)
    assert weak.interval is far and weak.margin is margin and weak.direction is None
    assert weak.certifiable_margin == pytest.approx(far.high - 0.5) and weak.needed is None
    assert weak.reason.startswith("AUC 0.750, 90% interval [") and \
        "does not show that the original remembers D_f" in weak.reason
    above = judge(_interval(0.70, 0.02), margin, n_forget=100, n_comparison=300)
    below = judge(_interval(0.30, 0.02), margin, n_forget=100, n_comparison=300)
    inside = judge(_interval(0.51, 0.01), margin, n_forget=100, n_comparison=300)
    straddle = judge(_interval(0.56, 0.03), margin, n_forget=100, n_comparison=300)
    assert "wholly above the margin ±0.050" in above.reason
    assert "wholly below the margin ±0.050" in below.reason
    assert "within the margin ±0.050 of never-seen data" in inside.reason
    assert "overlaps the margin ±0.050 without lying within it" in straddle.reason
    assert straddle.interval.estimate == 0.56 and straddle.certifiable_margin is not None


def test_the_level_is_the_never_seen_models_not_one_half():
    margin = margin_for(_interval(0.9, 0.01), "0.05")
    shifted = _interval(0.45, 0.01, level=0.46)           # a fixed test split's offset
    assert judge(shifted, margin, n_forget=100, n_comparison=300).verdict == "forgotten"
    assert judge(_interval(0.45, 0.01), margin, n_forget=100, n_comparison=300).verdict != \
        "forgotten"


def test_not_proven_says_the_certifiable_margin_and_the_samples_needed():
    margin = margin_for(_interval(0.9, 0.01), "0.05")
    i = _interval(0.52, 0.03)
    verdict = judge(i, margin, n_forget=100, n_comparison=300)
    assert verdict.verdict == "not-proven"
    assert verdict.certifiable_margin == pytest.approx(i.high - 0.5)
    # room = (0.05 - 0.02) / z; examples' variance must shrink to room², by n ∝ 1/variance
    z = norm.ppf(0.95)
    scale = 0.03 ** 2 / ((0.03 / z) ** 2)
    assert verdict.needed == {"forget": math.ceil(100 * scale), "comparison": math.ceil(300 * scale)}
    assert needed_samples(_interval(0.6, 0.03), 0.05, 100, 300) is None   # estimate outside
    # with never-seen models that stray: their spread is not reduced by samples
    null = NeverSeen(0.5, 0.01, (0.49, 0.5, 0.51, 0.5))
    strays = auc_interval(0.51, 0.03 ** 2, null)
    room = (0.05 - 0.01) / z
    budget = room ** 2 - strays.se_null ** 2
    assert strays.se_null == pytest.approx(0.01 * math.sqrt(1.25))
    assert needed_samples(strays, 0.05, 100, 300) == {
        "forget": math.ceil(100 * 0.03 ** 2 / budget),
        "comparison": math.ceil(300 * 0.03 ** 2 / budget)}
    assert 0.03 ** 2 / budget > 1                       # more samples than today
    wide = auc_interval(0.5, 0.02 ** 2, NeverSeen(0.5, 0.05, (0.45, 0.5, 0.55, 0.5)))
    no_number = needed_samples(wide, 0.05, 100, 300)
    assert (no_number["forget"], no_number["comparison"]) == (None, None)
    assert f"their spread alone takes ±{z * wide.se_null:.3f}" in no_number["why"]
    assert no_number["why"].endswith("only a wider --margin could")


# -- class-level requests -----------------------------------------------------------------------

def test_removed_and_mostly_removed_classes():
    train = np.repeat([0, 1, 2], [10, 10, 10])
    forget = np.array([0] * 10 + [1] * 6 + [2] * 2)
    found = removed_classes(forget, train, 3)
    assert found["removed"] == [0] and found["mostly"] == [1]
    assert found["shares"] == {0: 1.0, 1: 0.6, 2: 0.2}


def test_clopper_pearson_matches_scipy():
    for k, n in ((0, 20), (3, 20), (20, 20), (7, 50)):
        low, high = clopper_pearson(k, n, 0.05)
        ci = binomtest(k, n).proportion_ci(confidence_level=0.90, method="exact")
        assert low == pytest.approx(ci.low) and high == pytest.approx(ci.high)


def test_the_class_test_needs_the_classes_accuracy_shown_gone():
    gone = class_test(0, 40, 36, 0.01, 0.9, share=0.8, alpha=0.05)
    kept = class_test(35, 40, 36, 0.8, 0.9, share=0.8, alpha=0.05)
    unsure = class_test(6, 40, 36, 0.1, 0.9, share=0.8, alpha=0.05)
    assert (gone.verdict, kept.verdict, unsure.verdict) == ("forgotten", "not-forgotten",
                                                            "not-proven")
    assert gone.threshold == pytest.approx(0.2 * 0.9)
    assert (kept.accuracy, kept.original_accuracy, kept.n) == (35 / 40, 36 / 40, 40)
    assert kept.bounds == clopper_pearson(35, 40, 0.05)
    assert (kept.confidence, kept.original_confidence) == (0.8, 0.9)
    assert "still recognised" in kept.reason and "below" in gone.reason
    assert class_test(1, 1, 1, 0.5, 0.5, share=0.5, alpha=0.05).n == 1
    for bad in (dict(hits=5, n=4), dict(hits=0, n=0), dict(hits=1, n=4, original_hits=5)):
        args = {"hits": 0, "n": 4, "original_hits": 0, **bad}
        with pytest.raises(SftcError, match="counts"):
            class_test(args["hits"], args["n"], args["original_hits"], 0.1, 0.1, share=0.8,
                       alpha=0.05)
    with pytest.raises(SftcError, match="share"):
        class_test(0, 4, 4, 0.1, 0.1, share=1.0, alpha=0.05)


# -- the attack contract -----------------------------------------------------------------------

def test_built_in_attacks_are_registered_with_their_aliases():
    assert {"rmia-online", "rmia-offline", "lira-online", "lira-offline"} <= set(list_attacks())
    assert create_attack("rmia").name == "rmia-offline"
    assert create_attack("LiRA").name == "lira-offline"
    with pytest.raises(SftcError, match="unknown attack"):
        create_attack("nope")


def test_a_view_resampled_over_references_shares_its_signals():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(3, 5, 4))
    view = AttackView(logits[0], logits, np.arange(5) % 4, np.zeros((3, 5), bool))
    again = view.resampled([2, 2, 0])
    assert np.array_equal(again.refs("confidence"), view.refs("confidence")[[2, 2, 0]])
    assert again.references == 3 and again.in_mask.shape == (3, 5)
    with pytest.raises(SftcError, match="population"):
        view.target_population("log_prob")


def test_a_fixed_test_splits_offset_is_carried_by_the_never_seen_level():
    """The oracle's "low bias": every forget set is compared with the same test samples, so
    whatever those few hundred samples happen to be shifts every oracle's AUC the same way (and
    does not shrink with the forget set's size). Models that never saw D_f, scored on the same
    samples, carry the same shift: the difference the verdict judges is centred."""
    rng = np.random.default_rng(8)
    test_effect = rng.normal(0.25, 1.0, 300)             # one fixed test split, off-centre
    strata = match_strata(np.zeros(100), np.zeros(100), np.zeros(300), np.zeros(300),
                          by_difficulty=False)
    raw, centred = [], []
    for _ in range(30):                                  # 30 random forget sets
        forget_effect = rng.normal(0.0, 1.0, 100)
        def never_seen_model():
            return (forget_effect + rng.normal(0, 0.3, 100),
                    test_effect + rng.normal(0, 0.3, 300))
        oracle = stratified_auc(*never_seen_model(), strata)[0]
        level = np.mean([stratified_auc(*never_seen_model(), strata)[0] for _ in range(8)])
        raw.append(oracle)
        centred.append(oracle - level)
    assert np.mean(raw) < 0.46 and sum(a < 0.5 for a in raw) >= 27     # as measured on digits
    assert abs(np.mean(centred)) < 0.01


def test_strata_edge_cases_pinned():
    # a class without candidates first does not stop the next class from being matched
    later = match_strata([5, 1], [0.0, 10.5], [1] * 8, np.arange(10.0, 18.0), per_bin=4,
                         max_bins=2, reach=0.1)
    assert later.forget.tolist() == [-1, 0] and later.count == 2
    # the slack is a tenth of the range (hi − lo), not of hi + lo: candidates 10..17, range 7
    assert match_strata([1], [9.35], [1] * 8, np.arange(10.0, 18.0), reach=0.1).forget[0] == 0
    assert match_strata([1], [9.25], [1] * 8, np.arange(10.0, 18.0), reach=0.1).forget[0] == -1
    # by class only: one stratum per class, counted once
    by_class = match_strata([0, 1], [3.0, -3.0], [0, 0, 1], [0.0, 1.0, 2.0], by_difficulty=False)
    assert by_class.forget.tolist() == [0, 1] and by_class.count == 2
    assert by_class.describe()["by"] == "class"
    # tied quantile edges leave empty bins: a forget sample that falls in one has no match
    tied = match_strata([0, 0], [-0.05, 1.0], [0] * 8, [0, 0, 0, 0, 0, 0, 1, 1], per_bin=2,
                        max_bins=4, reach=0.1)
    assert tied.candidates.tolist() == [2] * 6 + [3, 3]
    assert tied.forget.tolist() == [-1, 3]
    with pytest.raises(SftcError, match="same samples"):
        stratified_auc(np.zeros(3), np.zeros(3), by_class)


def test_verdict_records_and_texts_pinned():
    margin = margin_for(_interval(0.9, 0.01), "0.05")
    no_power = judge(_interval(0.75, 0.01), margin, n_forget=10, n_comparison=30, power=False)
    assert no_power.interval.estimate == 0.75 and no_power.margin is margin
    assert no_power.certifiable_margin == pytest.approx(no_power.interval.high - 0.5)
    assert no_power.needed is None and "does not show that the original remembers" in \
        no_power.reason
    above = judge(_interval(0.70, 0.02), margin, n_forget=100, n_comparison=300)
    below = judge(_interval(0.30, 0.02), margin, n_forget=100, n_comparison=300)
    assert "wholly above" in above.reason and "wholly below" in below.reason
    straddle = judge(_interval(0.56, 0.03), margin, n_forget=100, n_comparison=300)
    assert straddle.interval.estimate == 0.56 and "overlaps the margin" in straddle.reason
    wide = auc_interval(0.5, 0.02 ** 2, NeverSeen(0.5, 0.05, (0.45, 0.5, 0.55, 0.5)))
    needed = needed_samples(wide, 0.05, 100, 300)
    assert set(needed) == {"forget", "comparison", "why"} and needed["comparison"] is None
    assert f"±{norm.ppf(0.95) * wide.se_null:.3f}" in needed["why"]
    # the interval: clipped to [0, 1], a zero variance allowed, a negative one refused
    assert auc_interval(0.99, 0.05 ** 2, NeverSeen(0.5, 0.0, (0.5,) * 4)).high == 1.0
    assert auc_interval(0.6, 0.0, NeverSeen(0.5, 0.0, (0.5,) * 4)).se == 0.0
    with pytest.raises(SftcError, match="variance"):
        auc_interval(0.6, -1.0, NeverSeen(0.5, 0.0, (0.5,) * 4))
    record = _interval(0.6, 0.02).to_dict()
    assert record["confidence"] == pytest.approx(0.9) and record["level"] == 0.5


def test_class_figures_pinned():
    train = np.repeat([0, 1, 2, 3], [10, 10, 10, 10])
    forget = np.array([0] * 10 + [1] * 5)               # class 1: exactly half
    found = removed_classes(forget, train, 5)           # class 4 exists but has no samples
    assert found == {"removed": [0], "mostly": [1], "shares": {0: 1.0, 1: 0.5}}
    none_kept = class_test(0, 4, 0, 0.0, 0.0, share=0.8, alpha=0.05)   # the original had none
    assert none_kept.original_accuracy == 0.0 and none_kept.verdict == "not-proven"
    gone = class_test(0, 40, 36, 0.01, 0.9, share=0.8, alpha=0.05)
    assert "at most 20% of the original's remains" in gone.reason
    with pytest.raises(SftcError, match="share"):
        class_test(0, 4, 4, 0.1, 0.1, share=0.0, alpha=0.05)
