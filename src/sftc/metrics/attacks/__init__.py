"""Per-example membership attacks and the evidence they give (DESIGN.md, "Evidence (turn 2)").

Pure functions over arrays, so that the audit and the benchmark's stored logits share them:

* :mod:`.signals` — the logit-scaled confidence (LiRA, NeurIPS score) and log Pr(y | x) (RMIA);
* :mod:`.lira` — LiRA online/offline (Carlini et al., S&P 2022), per-example or global variance;
* :mod:`.rmia` — RMIA online/offline (Zarifzadeh et al., ICML 2024);
* :mod:`.ulira` — U-LiRA, the likelihood-ratio test between unlearned and retrained models
  (Hayes et al., 2024);
* :mod:`.roc` — AUC, TPR at a fixed FPR (None where unresolvable);
* :mod:`.significance` — Mann–Whitney U p-values of D_f against never-seen scores;
* :mod:`.verdict` — power on the original and the verdict on the unlearned model;
* :mod:`.neurips` — the NeurIPS 2023 unlearning challenge's per-example ε and forgetting score.
"""
from .lira import lira_offline, lira_online
from .neurips import ForgettingQuality, example_epsilon, forgetting_quality, forgetting_score
from .rmia import rmia
from .roc import auc, check_fprs, resolvable, roc_figures, tpr_at_fpr
from .signals import logit_scaled_confidence, true_class_log_prob
from .significance import Significance, mann_whitney, smallest_p
from .ulira import u_lira
from .verdict import ALPHA, VERDICTS, Verdict, decide

__all__ = ["lira_offline", "lira_online", "ForgettingQuality", "example_epsilon",
           "forgetting_quality", "forgetting_score", "rmia", "auc", "check_fprs", "resolvable",
           "roc_figures", "tpr_at_fpr", "logit_scaled_confidence", "true_class_log_prob",
           "Significance", "mann_whitney", "smallest_p", "u_lira", "ALPHA", "VERDICTS",
           "Verdict", "decide"]
