"""Per-example membership attacks and the evidence they give (DESIGN.md, "Evidence").

Pure functions and small classes over arrays, so that the audit, the benchmark's stored logits
and the demo share them:

* :mod:`.base` — the attack contract (:class:`Attack`, :class:`AttackView`) and its registry
  (``@register_attack``, ``list_attacks``, ``create_attack``);
* :mod:`.signals` — the logit-scaled confidence (LiRA, NeurIPS score) and log Pr(y | x) (RMIA);
* :mod:`.lira` — LiRA online/offline (Carlini et al., S&P 2022), per-example or global variance;
* :mod:`.rmia` — RMIA online/offline (Zarifzadeh et al., ICML 2024);
* :mod:`.ulira` — U-LiRA, the likelihood-ratio test between unlearned and retrained models
  (Hayes et al., 2024);
* :mod:`.roc` — AUC, TPR at a fixed FPR (None where unresolvable);
* :mod:`.significance` — Mann–Whitney U p-values of D_f against never-seen scores;
* :mod:`.comparison` — D_f against never-seen samples of its class and difficulty: strata, the
  stratified AUC and its DeLong variance;
* :mod:`.equivalence` — the retrain band (where models retrained without D_f land), the
  attack's power and the certificate's resolution;
* :mod:`.verdict` — the verdict on one model, and what would decide a ``not-proven`` one;
* :mod:`.class_level` — class-level requests: the model's behaviour on never-seen samples of a
  removed class;
* :mod:`.neurips` — the NeurIPS 2023 unlearning challenge's per-example ε and forgetting score.
"""
from .base import (ATTACKS, SIGNALS, Attack, AttackView, attack_class, create_attack,
                   list_attacks, register_attack)
from .class_level import ClassTest, class_test, clopper_pearson, removed_classes
from .comparison import Strata, match_strata, stratified_auc
from .equivalence import (ALPHA, BETA, RESOLUTION, VERDICTS, Band, Interval, NeverSeen, Power,
                          auc_interval, band_factor, parse_resolution, power_of, retrain_band)
from .lira import LiRAOffline, LiRAOnline, lira_offline, lira_online
from .neurips import ForgettingQuality, example_epsilon, forgetting_quality, forgetting_score
from .rmia import RMIAOffline, RMIAOnline, rmia
from .roc import auc, check_fprs, resolvable, roc_figures, tpr_at_fpr
from .signals import logit_scaled_confidence, true_class_log_prob
from .significance import Significance, mann_whitney, smallest_p
from .ulira import u_lira
from .verdict import Verdict, judge, reference_cost

__all__ = ["ATTACKS", "SIGNALS", "Attack", "AttackView", "attack_class", "create_attack",
           "list_attacks", "register_attack", "ClassTest", "class_test", "clopper_pearson",
           "removed_classes", "Strata", "match_strata", "stratified_auc",
           "ALPHA", "BETA", "RESOLUTION", "VERDICTS", "Band", "Interval", "NeverSeen", "Power",
           "Verdict", "auc_interval", "band_factor", "judge", "parse_resolution", "power_of",
           "reference_cost", "retrain_band", "LiRAOffline", "LiRAOnline",
           "lira_offline", "lira_online", "ForgettingQuality", "example_epsilon",
           "forgetting_quality", "forgetting_score", "RMIAOffline", "RMIAOnline", "rmia", "auc",
           "check_fprs", "resolvable", "roc_figures", "tpr_at_fpr", "logit_scaled_confidence",
           "true_class_log_prob", "Significance", "mann_whitney", "smallest_p", "u_lira"]
