"""The evidence statistics: matched comparison, the retrain band, the power and resolution, the
four verdicts and the class test, against hand values, plain restatements and scipy, on synthetic scores built to
break what each guards."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest, norm
from scipy.stats import t as student_t

from sftc.errors import SftcError
from sftc.metrics.attacks import (AttackView, NeverSeen, auc, auc_interval, band_factor,
                                  class_test, create_attack, judge, list_attacks, match_strata,
                                  parse_resolution, power_of, reference_cost, removed_classes,
                                  retrain_band, stratified_auc)
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


# -- the retrain band, power, verdict ----------------------------------------------------------

def _band(level=0.5, spread=0.02, k=8, alpha=0.05):
    """A band of K leave-one-out AUCs with exactly this mean and standard deviation."""
    z = np.arange(k) - (k - 1) / 2
    aucs = level + spread * z / z.std(ddof=1)
    return retrain_band(NeverSeen.from_aucs(aucs), alpha)


def _auc(estimate, se=0.03, band=None):
    return auc_interval(estimate, se ** 2, band or _band())


def _judge(target, original=0.9, band=None, resolution="50%", n_forget=100, n_comparison=300):
    band = band or _band()
    return judge(_auc(target, band=band), band, power_of(_auc(original, band=band), band,
                                                         resolution),
                 n_forget=n_forget, n_comparison=n_comparison)


def test_the_band_by_hand_against_scipy():
    null = NeverSeen.from_aucs([0.48, 0.52, 0.50, 0.46, 0.54])
    s = math.sqrt((0.02 ** 2 * 2 + 0.04 ** 2 * 2) / 4)
    assert (null.level, null.count) == (pytest.approx(0.5), 5)
    assert null.spread == pytest.approx(s)
    band = retrain_band(null, alpha=0.05)
    root = math.sqrt(1 + 1 / 5)
    assert band.stray == pytest.approx(s * root)
    assert band.certify == pytest.approx(student_t.ppf(0.95, 4) * s * root)
    assert band.refute == pytest.approx(student_t.ppf(0.975, 4) * s * root)
    assert band.detectable == pytest.approx((student_t.ppf(0.95, 4) + student_t.ppf(0.90, 4))
                                            * s * root)
    assert band.confidence == pytest.approx(0.9) and band.delta == band.certify
    assert retrain_band(null, alpha=0.025).certify == pytest.approx(student_t.ppf(0.975, 4) * s
                                                                   * root)
    with pytest.raises(SftcError, match="at least 3"):
        NeverSeen.from_aucs([0.5, 0.5])
    with pytest.raises(SftcError, match="alpha"):
        retrain_band(null, alpha=0.3)


def test_a_fresh_retrain_lands_in_the_band_at_the_stated_rate():
    """Simulation: K references' statistics and one more retrain, all from one normal law. The
    band holds the new one 90 % of the time and the refute line lets 5 % through, for 4 and 8
    references alike (a normal quantile instead of Student's, or no 1/K, misses at K = 4)."""
    rng = np.random.default_rng(11)
    for k in (4, 8):
        draws = rng.normal(0.5, 0.03, (40000, k + 1))
        level, spread = draws[:, :k].mean(1), draws[:, :k].std(1, ddof=1)
        one = retrain_band(NeverSeen.from_aucs(draws[0, :k]))
        certify, refute, _ = band_factor(k)
        assert one.certify == pytest.approx(certify * spread[0])
        distance = np.abs(draws[:, k] - level)
        assert 0.89 < np.mean(distance <= certify * spread) < 0.91, k
        assert 0.044 < np.mean(distance > refute * spread) < 0.056, k


def test_fewer_references_widen_the_band():
    for a, b in zip(band_factor(4), band_factor(8)):
        assert a > b * 1.2
    assert band_factor(8)[0] > band_factor(64)[0] > norm.ppf(0.95)
    four, eight = _band(k=4), _band(k=8)        # the same spread
    assert four.certify > eight.certify and four.detectable > eight.detectable
    cost = reference_cost(four)
    assert cost.startswith("with 4 references the band is ") and "Student's t on 3" in cost
    assert f"band is {band_factor(4)[0] / band_factor(8)[0]:.2f}× as wide" in cost
    assert f"needs {band_factor(4)[2] / band_factor(8)[2]:.2f}× the excess" in cost
    assert reference_cost(eight) is None


def test_the_verdicts_on_both_sides_of_the_level():
    band = _band(spread=0.02)                  # certify 0.0402, refute 0.0502
    assert band.certify == pytest.approx(2.0095 * 0.02, abs=1e-4)
    inside, above, below = _judge(0.52), _judge(0.58), _judge(0.42)
    borderline = _judge(0.548)
    assert inside.verdict == "forgotten" and inside.direction is None
    assert (above.verdict, above.direction) == ("not-forgotten", "remembered")
    assert (below.verdict, below.direction) == ("not-forgotten", "over-forgotten")
    assert borderline.verdict == "not-proven" and borderline.needed["kind"] == "borderline"
    assert _judge(0.48).verdict == "forgotten"            # both sides alike
    assert _judge(0.452).verdict == "not-proven"          # below the band, within the refute line
    assert inside.certifiable_margin == pytest.approx(0.02)
    assert inside.band == band and inside.interval.estimate == 0.52
    assert inside.interval.low == pytest.approx(0.52 - band.certify)
    assert "inside it; resolution" in inside.reason
    assert "above the refute line ±0.050" in above.reason
    assert "below the refute line" in below.reason
    record = above.to_dict()
    assert set(record) == {"verdict", "direction", "reason", "interval", "band",
                           "certifiable_margin", "needed", "class_test", "power", "in_band"}
    assert record["band"]["certify"] == band.certify and record["band"]["rule"] == "retrain band"
    assert inside.in_band and not above.in_band and not borderline.in_band


def test_a_model_beyond_the_refute_line_is_not_forgotten_whatever_the_original():
    weak = _judge(0.60, original=0.51)
    assert (weak.verdict, weak.direction) == ("not-forgotten", "remembered")


def test_resolution_by_hand_and_the_asked_share():
    band = _band(spread=0.02)
    power = power_of(_auc(0.9, band=band), band, "50%")
    assert power.original_excess == pytest.approx(0.4) and power.shown
    assert power.detectable == pytest.approx(band.detectable)
    assert power.resolution == pytest.approx(1 - band.detectable / 0.4) and power.enough
    # an original whose excess is just under twice e*: within the band is not enough
    short = band.level + 1.9 * band.detectable
    verdict = _judge(0.5, original=short, band=band)
    assert verdict.verdict == "not-proven" and verdict.needed["kind"] == "resolution"
    assert "short of the asked 50%" in verdict.reason
    # ... and just over it is
    assert _judge(0.5, original=band.level + 2.01 * band.detectable, band=band).verdict == \
        "forgotten"
    assert _judge(0.5, original=short, band=band, resolution="40%").verdict == "forgotten"
    # an absolute bound on the undetected excess
    assert power_of(_auc(0.9, band=band), band, "0.05").enough is (band.detectable <= 0.05)
    assert not power_of(_auc(0.9, band=band), band, "0.01").enough
    for bad in ("0%", "100%", "abc", "0.5", "-0.1"):
        with pytest.raises(SftcError, match="--resolution"):
            parse_resolution(bad)


def test_nothing_detectable_when_the_original_is_within_the_refute_line():
    band = _band(spread=0.02)
    for target in (0.5, 0.53, 0.47):
        found = _judge(target, original=0.5 + 0.9 * band.refute)
        assert found.verdict == "nothing-detectable" and found.needed is None
        assert "nothing detectable to remove" in found.reason
        assert not found.power.shown


def test_not_proven_names_what_would_decide_it():
    band = _band(spread=0.02)
    short = band.level + 1.8 * band.detectable
    verdict = _judge(0.5, original=short, band=band, n_forget=90, n_comparison=300)
    needed = verdict.needed
    target = 0.5 * (short - band.level)
    scale = (band.detectable / target) ** 2
    assert needed["target_detectable"] == pytest.approx(target)
    assert needed["forget"] == math.ceil(90 * scale) and needed["comparison"] == \
        math.ceil(300 * scale)
    k = next(k for k in range(9, 65) if band_factor(k)[2] * band.spread <= target)
    assert needed["references"] == k and needed["retrain"] is True
    assert f"{k} references at this spread" in needed["why"] and "--method retrain" in \
        needed["why"]
    hopeless = _judge(0.5, original=band.level + 1.05 * band.refute, band=band)
    assert hopeless.needed["references"] is None and "more references alone cannot" in \
        hopeless.needed["why"]
    borderline = _judge(0.5 + 0.048, band=band, n_forget=90, n_comparison=300).needed
    assert borderline["forget"] == math.ceil(90 * (band.refute / 0.048) ** 2)


def test_edges_of_the_band_and_the_records_of_what_would_decide():
    """Pinned by the mutation run of equivalence.py and verdict.py (docs/testing.md)."""
    assert band_factor(3)[0] == pytest.approx(student_t.ppf(0.95, 2) * math.sqrt(4 / 3))
    with pytest.raises(SftcError, match="at least 3"):
        band_factor(2)
    null = NeverSeen.from_aucs([0.48, 0.52, 0.50, 0.46, 0.54])
    loose = retrain_band(null, beta=0.2)
    assert loose.detectable == pytest.approx(loose.certify + student_t.ppf(0.8, 4) * loose.stray)
    for beta in (0.0, 0.5):
        with pytest.raises(SftcError, match="β"):
            retrain_band(null, beta=beta)
    # no excess, no resolution
    band = _band(spread=0.02)
    assert power_of(_auc(0.45, band=band), band).resolution is None
    # an absolute resolution: the target is the given excess, and the references found use β
    absolute = _judge(0.5, original=0.5 + 3 * band.detectable, band=band, resolution="0.03")
    assert absolute.needed["target_detectable"] == 0.03
    assert absolute.needed["forget"] == math.ceil(100 * (band.detectable / 0.03) ** 2)
    assert absolute.band is band and absolute.interval.estimate == 0.5
    assert "from the never-seen level 0.500" in absolute.reason
    why = absolute.needed["why"]
    assert "the band narrows like 1/√n" in why and "the yardstick itself" in why
    wide = retrain_band(NeverSeen.from_aucs([0.48, 0.52, 0.50, 0.46, 0.54]), beta=0.3)
    refs = _judge(0.5, original=wide.level + 1.8 * wide.detectable, band=wide).needed
    target = 0.5 * 1.8 * wide.detectable
    assert refs["references"] == next(k for k in range(6, 65)
                                      if band_factor(k, beta=0.3)[2] * wide.spread <= target)
    # borderline: its record and words
    near = _judge(0.5 + 0.045, band=band).needed
    assert (near["references"], near["retrain"], near["kind"]) == (None, True, "borderline")
    assert "differs from retrained models (the band narrows like 1/√n)" in near["why"]
    assert near["why"].endswith("(--method retrain)")


def test_the_level_is_the_references_not_one_half():
    band = _band(level=0.44, spread=0.02)
    assert _judge(0.44, band=band).verdict == "forgotten"
    assert _judge(0.50, band=band).verdict == "not-forgotten"


def test_simulated_half_keepers_are_rarely_certified_and_retrains_mostly():
    """The whole rule on simulated statistics (spread 1): K = 8 references, an original whose
    excess is E, a fresh retrain and a model keeping half of the original's excess. The half
    keeper is certified at most 10 % of the time at every E; retrains 90 % once E is large, and
    called not-forgotten 5 % of the time."""
    rng = np.random.default_rng(5)
    for excess, retrain_low in ((5.0, 0.0), (9.0, 0.6), (20.0, 0.87)):
        counts = {"retrain": 0, "half": 0, "refuted": 0}
        n = 600
        for _ in range(n):
            refs = rng.normal(0.0, 1.0, 8)
            band = retrain_band(NeverSeen.from_aucs(refs / 100 + 0.5))
            power = power_of(_auc(0.5 + rng.normal(excess, 1.0) / 100, band=band), band)
            for name, value in (("retrain", rng.normal(0, 1)), ("half", rng.normal(excess / 2, 1))):
                found = judge(_auc(0.5 + value / 100, band=band), band, power, n_forget=90,
                              n_comparison=300)
                counts[name] += found.verdict == "forgotten"
                counts["refuted"] += name == "retrain" and found.verdict == "not-forgotten"
        assert counts["half"] / n <= 0.10
        assert counts["retrain"] / n >= retrain_low
        assert 0.02 < counts["refuted"] / n < 0.09


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


def test_a_class_level_request_is_decided_by_the_class_test_and_vetoed_by_membership():
    from sftc.bench.evidence import combine

    gone = class_test(0, 40, 36, 0.01, 0.9, alpha=0.05)
    kept = class_test(35, 40, 36, 0.8, 0.9, alpha=0.05)
    unsure = class_test(6, 40, 36, 0.1, 0.9, alpha=0.05)
    band = _band(spread=0.02)
    quiet = _judge(0.5, original=0.5 + 0.9 * band.refute, band=band)   # nothing-detectable
    remembered = _judge(0.7, band=band)
    assert quiet.verdict == "nothing-detectable"
    certified = combine(quiet, gone)
    assert (certified.verdict, certified.in_band) == ("forgotten", True)
    assert certified.classes["verdict"] == "forgotten" and "class test forgotten" in \
        certified.reason
    assert combine(remembered, gone).text == "not-forgotten (remembered)"          # the veto
    assert combine(quiet, kept).text == "not-forgotten (class still recognised)"
    assert combine(_judge(0.5, band=band), kept).verdict == "not-forgotten"
    undecided = combine(quiet, unsure)
    assert undecided.verdict == "not-proven" and undecided.needed["kind"] == "class"
    assert not undecided.in_band


def test_interval_records_pinned():
    band = _band(spread=0.02)
    assert auc_interval(0.99, 0.05 ** 2, band).high == 1.0
    assert auc_interval(0.01, 0.05 ** 2, band).low == 0.0
    i = auc_interval(0.6, 0.03 ** 2, band)
    assert (i.se, i.se_null, i.se_examples, i.level) == (band.stray, band.stray,
                                                          pytest.approx(0.03), band.level)
    assert auc_interval(0.6, 0.0, band).se_examples == 0.0
    with pytest.raises(SftcError, match="variance"):
        auc_interval(0.6, -1.0, band)
    record = i.to_dict()
    assert record["confidence"] == pytest.approx(0.9) and record["level"] == band.level


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
