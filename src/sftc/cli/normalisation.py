"""A checkpoint trained outside sftc, fed this run's normalisation: is it the one it was trained
with? Measured, not guessed.

A checkpoint with a run.json beside it records its normalisation, and a different one is warned
about (:func:`sftc.cli.models_io.warn_preprocessing`). One without a record (trained elsewhere)
is scored on a fixed sample of the test set with this run's normalisation and with the others a
user can ask for (``--normalize none``: pixels / 255; ``--mean 0.5 --std 0.5``: pixels in
[-1, 1]; ImageNet's statistics for three-channel images). An alternative is warned about, with
both accuracies, when it classifies the sample better by at least :data:`MIN_GAIN` and an exact
paired sign test over the samples on which the two disagree rejects "equally good" at
:data:`ALPHA` (the audit's level): a model fed the wrong statistics loses accuracy, and a gain of
this size on these samples is not chance. No warning proves the normalisation right; it says
that none of the alternatives is shown to be better.
"""
from __future__ import annotations

import warnings
from math import comb

#: Test samples scored per normalisation, a gain that matters, and the test's level.
SAMPLE, MIN_GAIN, ALPHA = 512, 0.05, 0.001
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def alternatives(channels: int) -> list[tuple[str, tuple, tuple]]:
    """(the flags that ask for it, mean, std) of each alternative normalisation."""
    options = [("--normalize none", (0.0,) * channels, (1.0,) * channels),
               ("--mean 0.5 --std 0.5", (0.5,) * channels, (0.5,) * channels)]
    if channels == 3:
        options.append(("--mean 0.485,0.456,0.406 --std 0.229,0.224,0.225", *IMAGENET))
    return options


def sign_test(better: int, worse: int) -> float:
    """One-sided exact p of ``better`` wins against ``worse`` losses under equal chances."""
    n = better + worse
    if n == 0:
        return 1.0
    return sum(comb(n, k) for k in range(better, n + 1)) / 2 ** n


def sample_index(split, size: int = SAMPLE):
    """Evenly spaced test samples (the same ones every run)."""
    import torch

    test = split.test
    if len(test) <= size:
        return test
    return test[torch.linspace(0, len(test) - 1, size).round().long()]


def correct_with(model, x_raw, y, mean, std):
    """Per-sample correctness of ``model`` on raw pixels (0..255) normalised with mean/std."""
    import torch

    m = torch.tensor(mean, dtype=x_raw.dtype).view(1, -1, 1, 1) * 255.0
    s = torch.tensor(std, dtype=x_raw.dtype).view(1, -1, 1, 1) * 255.0
    with torch.no_grad():
        return model((x_raw - m) / s).argmax(1) == y


def normalisation_evidence(model, split) -> dict | None:
    """This run's accuracy on the sample and the best alternative's, with the sign test; None
    where the data are not uint8 images held in memory."""
    import torch

    data = split.data
    if not getattr(data, "is_uint8", False) or not hasattr(data, "batch") or not len(split.test):
        return None
    index = sample_index(split)
    device = next(iter(model.parameters()), torch.empty(0)).device
    was = model.training
    model.eval()
    try:
        x, y = data.batch(index, device)
        mean = torch.tensor(data.mean, device=device).view(1, -1, 1, 1) * 255.0
        std = torch.tensor(data.std, device=device).view(1, -1, 1, 1) * 255.0
        raw = x * std + mean
        ours = correct_with(model, raw, y, data.mean, data.std)
        best = None
        for flags, m, s in alternatives(data.channels):
            if tuple(m) == tuple(data.mean) and tuple(s) == tuple(data.std):
                continue
            theirs = correct_with(model, raw, y, m, s)
            p = sign_test(int((theirs & ~ours).sum()), int((ours & ~theirs).sum()))
            found = {"flags": flags, "accuracy": float(theirs.float().mean()), "p": p}
            if best is None or found["accuracy"] > best["accuracy"]:
                best = found
    finally:
        model.train(was)
    return {"samples": len(index), "accuracy": float(ours.float().mean()), "best": best,
            "mean": tuple(data.mean), "std": tuple(data.std)}


def check_external_normalisation(model, split, named: str, args=None) -> str | None:
    """Warn (and return the text) when an alternative normalisation is shown to fit a checkpoint
    without a record better than this run's (module docstring)."""
    from ..fingerprint import PreprocessingMismatch

    found = normalisation_evidence(model, split)
    best = (found or {}).get("best")
    if not best or best["accuracy"] - found["accuracy"] < MIN_GAIN or best["p"] >= ALPHA:
        return None
    values = lambda v: ",".join(f"{x:.4g}" for x in v)  # noqa: E731
    text = (f"{named} has no run.json, and on {found['samples']} test samples it classifies "
            f"{found['accuracy']:.3f} correctly with this run's normalisation (mean "
            f"{values(found['mean'])}, std {values(found['std'])}) but {best['accuracy']:.3f} "
            f"with {best['flags']} (paired sign test p = {best['p']:.1g}): it was probably "
            f"trained with other normalisation; pass {best['flags']}, or the --mean/--std it was "
            "trained with")
    warnings.warn(PreprocessingMismatch(text), stacklevel=2)
    return text
