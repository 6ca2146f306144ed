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
* :mod:`.equivalence` — the interval, the margin and the verdict (two one-sided tests);
* :mod:`.class_level` — class-level requests: the model's behaviour on never-seen samples of a
  removed class;
* :mod:`.neurips` — the NeurIPS 2023 unlearning challenge's per-example ε and forgetting score.
"""
from .base import (ATTACKS, SIGNALS, Attack, AttackView, attack_class, create_attack,
                   list_attacks, register_attack)
from .class_level import ClassTest, class_test, clopper_pearson, removed_classes
from .comparison import Strata, match_strata, stratified_auc
from .equivalence import (ALPHA, VERDICTS, Interval, Margin, NeverSeen, Verdict, auc_interval,
                          judge, margin_for, needed_samples, parse_margin)
from .lira import LiRAOffline, LiRAOnline, lira_offline, lira_online
from .neurips import ForgettingQuality, example_epsilon, forgetting_quality, forgetting_score
from .rmia import RMIAOffline, RMIAOnline, rmia
from .roc import auc, check_fprs, resolvable, roc_figures, tpr_at_fpr
from .signals import logit_scaled_confidence, true_class_log_prob
from .significance import Significance, mann_whitney, smallest_p
from .ulira import u_lira

__all__ = ["ATTACKS", "SIGNALS", "Attack", "AttackView", "attack_class", "create_attack",
           "list_attacks", "register_attack", "ClassTest", "class_test", "clopper_pearson",
           "removed_classes", "Strata", "match_strata", "stratified_auc",
           "ALPHA", "VERDICTS", "Interval", "Margin", "NeverSeen", "Verdict", "auc_interval", "judge",
           "margin_for", "needed_samples", "parse_margin", "LiRAOffline", "LiRAOnline",
           "lira_offline", "lira_online", "ForgettingQuality", "example_epsilon",
           "forgetting_quality", "forgetting_score", "RMIAOffline", "RMIAOnline", "rmia", "auc",
           "check_fprs", "resolvable", "roc_figures", "tpr_at_fpr", "logit_scaled_confidence",
           "true_class_log_prob", "Significance", "mann_whitney", "smallest_p", "u_lira"]
