"""Metrics of section 5.4: accuracies, SAPE errors, JS distinguishability, CatBoost MIA, time."""
from .evaluate import METRIC_KEYS, Evaluator, accuracies, evaluate_models, subset_logits
from .js import js_divergence, js_paper
from .mia import MiaResult, membership_inference
from .sape import acc_dis, acc_err_original, acc_err_retrain, sape

__all__ = ["METRIC_KEYS", "Evaluator", "accuracies", "evaluate_models", "subset_logits",
           "js_divergence", "js_paper", "MiaResult", "membership_inference", "acc_dis",
           "acc_err_original", "acc_err_retrain", "sape"]
