"""sftc's own metrics, declared once (section 5.4 of the paper; the audit's attack columns; time).

Read by the tables (:mod:`sftc.report.tables`), the metric help (:mod:`sftc.report.text`), the
benchmark's averages over seeds (:mod:`sftc.bench.stats`) and ``sftc methods --metrics``.
"""
from __future__ import annotations

from .registry import Metric, declare

for _metric in (
    Metric("acc_retain", "accuracy of M_u on the retain set D_r (the benchmark: on the MIA's "
           "class-balanced member sample of D_r, as large as the test set)", "Acc retain",
           place="accuracy"),
    Metric("acc_forget", "accuracy of M_u on the forget set D_f", "Acc forget",
           place="accuracy"),
    Metric("acc_val", "accuracy of M_u on the validation split"),
    Metric("acc_test", "accuracy of M_u on the test split D_t", "Acc test", place="accuracy"),
    Metric("acc_err_retrain", "SAPE of test accuracy vs the retrained oracle (Eq. 5), lower is "
           "better", "AccErr{Mu,MR} ↓", "min", needs_oracle=True, place="table1"),
    Metric("acc_dis", "SAPE of forget accuracy vs the retrained oracle (Eq. 6), lower is better",
           "AccDis ↓", "min", needs_oracle=True, forgetting=True, place="table1"),
    Metric("acc_err_original", "SAPE of test accuracy vs the original model (Eq. 7), lower is "
           "better", "AccErr{Mu,M} ↓", "min", place="table1"),
    Metric("js", "Jensen-Shannon divergence from the original on the forget set (Eq. 8), higher "
           "= more changed", "JS ↑", "max", forgetting=True, place="table1"),
    Metric("js_paper", "the authors' unbounded JS variant, for comparison with the paper's "
           "Table 1"),
    Metric("mia", "share of forget samples a CatBoost attacker calls non-members (Eq. 9), higher "
           "is better", "MIA ↑", "max", forgetting=True, place="table1"),
    Metric("mia_attacker_acc", "the attacker's own cross-validated accuracy (0.5 = it learned "
           "nothing)"),
    Metric("rmia_auc", "the audit's matched AUC (RMIA offline against models retrained without "
           "D_f): D_f against never-seen test samples of its class and difficulty; at the "
           "never-seen level (near 0.5) as a model that never saw it, above = remembered, below "
           "= over-forgotten", "RMIA AUC →0.5", "half", forgetting=True, fmt="{:.4f}",
           place="attack"),
    Metric("rmia_tpr", "share of the forget set RMIA flags at 1 % false positives on test data, "
           "lower is better (chance 0.01)", "RMIA TPR@1% ↓", "min", forgetting=True,
           place="attack"),
    Metric("unlearn_seconds", "wall-clock seconds of unlearning", "Seconds", fmt="{:.2f}",
           place="accuracy"),
    Metric("retrain_seconds", "wall-clock seconds of retraining from scratch"),
    Metric("time_ratio", "unlearning time / retraining time (the paper keeps every method under "
           "0.15)"),
):
    declare(_metric)
