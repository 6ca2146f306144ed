"""Accuracy errors of section 5.4 (Eq. 4-7)."""
from __future__ import annotations


def sape(a: float, b: float) -> float:
    """Symmetric absolute percentage error SAPE(a, b) = |b - a| / (b + a) (Eq. 4); 0 when both are 0."""
    total = a + b
    return 0.0 if total == 0 else abs(b - a) / total


def acc_err_retrain(acc_test_retrained: float, acc_test_unlearned: float) -> float:
    """AccErr{Mu,MR} = SAPE(Acc_MR(Dt), Acc_Mu(Dt)) (Eq. 5): test accuracy against the oracle."""
    return sape(acc_test_retrained, acc_test_unlearned)


def acc_dis(acc_forget_retrained: float, acc_forget_unlearned: float) -> float:
    """AccDis = SAPE(Acc_MR(Df), Acc_Mu(Df)) (Eq. 6): forget accuracy against the oracle."""
    return sape(acc_forget_retrained, acc_forget_unlearned)


def acc_err_original(acc_test_original: float, acc_test_unlearned: float) -> float:
    """AccErr{Mu,M} = SAPE(Acc_M(Dt), Acc_Mu(Dt)) (Eq. 7): test accuracy against the original."""
    return sape(acc_test_original, acc_test_unlearned)
