"""Metrics of section 5.4: accuracies, SAPE errors, JS distinguishability, CatBoost MIA, time;
every metric declared once (:mod:`.registry`, :mod:`.declarations`), a user's with
``@register_metric``."""
from . import declarations  # noqa: F401  (sftc's own metrics, declared on import)
from .evaluate import METRIC_KEYS, Evaluator, accuracies, evaluate_models, subset_logits
from .js import js_divergence, js_paper
from .mia import MiaResult, membership_inference
from .registry import (METRICS, Metric, MetricInputs, compute_user_metrics, list_metrics,
                       metric_info, register_metric, user_metrics)
from .sape import acc_dis, acc_err_original, acc_err_retrain, sape

__all__ = ["METRIC_KEYS", "Evaluator", "accuracies", "evaluate_models", "subset_logits",
           "js_divergence", "js_paper", "MiaResult", "membership_inference", "acc_dis",
           "acc_err_original", "acc_err_retrain", "sape", "METRICS", "Metric", "MetricInputs",
           "compute_user_metrics", "list_metrics", "metric_info", "register_metric",
           "user_metrics"]
