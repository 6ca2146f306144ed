"""Bounds on what a run asks for, derived from what this machine has, checked before any work.

A huge ``--epochs``, ``--references``, ``--models`` or ``--image-size`` does not fail by itself:
the run starts and goes on until it is killed, or dies deep inside numpy or torch. Each check
here computes what the run must hold *at least* (a lower bound, never a guess of the total) and
refuses, in one line that states the arithmetic, a request that cannot fit this machine's
available memory. A bound that only a fixed number could give (a longest "reasonable" run) is
not imposed: a long run that fits shows its progress and time left instead.

* epochs: every epoch appends one row to the run's history (epoch, loss, learning rate, steps,
  seconds and the tracked accuracies), held in memory and written into run.json. Measured: a
  row of a tracked unlearning run takes ~0.9 KB as a Python dict, plus ~0.2 KB of JSON text, so
  :data:`HISTORY_ROW_BYTES` = 1 KiB.
* references: the audit keeps, per reference model, the logits of every pool sample (float32,
  one per class) and its membership mask (one byte per sample).
* search trials (``--until forgotten``): every trial's checks append one row each (at most
  ``--max-epochs``) to the search's trace, held in memory and written into run.json, so a trial
  holds at least :data:`HISTORY_ROW_BYTES` per epoch.
* forgetting-score models: the score keeps, per unlearned and per retrained model, one float64
  confidence per forget sample; model k is trained with seed ``seed + k``, which must stay a
  valid seed.
* image sizes: one batch of resized inputs is a float32 tensor of batch x channels x side x side
  values; below 2 pixels nothing but each channel's mean is left.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import SftcError

HISTORY_ROW_BYTES = 1024
FLOAT32, FLOAT64 = 4, 8
MAX_SEED = 2 ** 32 - 1
#: The smallest side at which an image keeps any shape: at 1 pixel each channel is its mean.
MIN_IMAGE_SIDE = 2
#: Below this side the built-in models lose most of the shape (small-cnn is built for >= 4).
SMALL_IMAGE_SIDE = 4


def available_memory() -> int | None:
    """Bytes of memory this process can still use: the kernel's MemAvailable, capped by the
    control group's limit (containers); None where neither can be read."""
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            pass
    for limit, used in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),):
        try:
            text = Path(limit).read_text().strip()
            if text.isdigit():
                found.append(int(text) - int(Path(used).read_text().strip()))
        except (OSError, ValueError):
            pass
    return min(found) if found else None


def size_text(n: float) -> str:
    """Bytes in decimal units: 1.3 TB, 22 GB, 512 MB."""
    for unit, scale in (("YB", 1e24), ("ZB", 1e21), ("EB", 1e18), ("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6),
                        ("KB", 1e3)):
        if n >= scale:
            value = n / scale
            return f"{value:.2g} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{int(n)} bytes"


def _refuse_over_memory(need: int, option: str, value: int, how: str, per_unit: int,
                        available: int | None) -> None:
    available = available_memory() if available is None else available
    if available is None or need <= available:
        return
    most = max(available // max(per_unit, 1), 0)
    raise SftcError(f"{option} {value}: {how} = {size_text(need)}, more than the "
                    f"{size_text(available)} of memory available here; give {option} {most:,} "
                    "or less")


def check_epochs(epochs: int, option: str = "--epochs", runs: int = 1,
                 available: int | None = None) -> None:
    """Refuse epochs whose per-epoch history (``runs`` runs of ``epochs`` rows each) cannot be
    held in memory."""
    runs = max(int(runs), 1)
    per_run = f" x {runs:,} runs" if runs > 1 else ""
    _refuse_over_memory(epochs * runs * HISTORY_ROW_BYTES, option, epochs,
                        f"the per-epoch history alone would take {epochs:,} epochs{per_run} x "
                        f"~1 KB per row", runs * HISTORY_ROW_BYTES, available)


def check_trials(trials: int, max_epochs: int, option: str = "--trials",
                 available: int | None = None) -> None:
    """Refuse more search trials than their trace (one row per checked epoch) can hold in
    memory (shared by ``sftc unlearn --until``, ``sftc deploy forget`` and ``sftc demo``)."""
    per = max(int(max_epochs), 1) * HISTORY_ROW_BYTES
    _refuse_over_memory(trials * per, option, trials,
                        f"the search's trace alone would take {trials:,} trials x "
                        f"{max_epochs:,} checked epochs x ~1 KB per row", per, available)


def check_references(references: int, pool: int, classes: int, option: str = "--references",
                     available: int | None = None) -> None:
    """Refuse more reference models than their logits on the queried samples can fit in memory."""
    per = pool * classes * FLOAT32
    _refuse_over_memory(references * per, option, references,
                        f"the reference models' outputs alone would take {references:,} models x "
                        f"{pool:,} queried samples x {classes} float32 logits",
                        per, available)


def check_models(models: int, seed: int, forget_size: int, option: str = "--models",
                 available: int | None = None) -> None:
    """Refuse a forgetting score whose seeds run out or whose confidences cannot fit memory."""
    if seed + models - 1 > MAX_SEED:
        raise SftcError(f"{option} {models}: model k is trained with seed --seed + k, and --seed "
                        f"{seed} + {models - 1:,} passes the largest seed {MAX_SEED}; give "
                        f"{option} {MAX_SEED - seed + 1:,} or less (or a smaller --seed)")
    per = 2 * forget_size * FLOAT64
    _refuse_over_memory(models * per, option, models,
                        f"the confidences alone would take {models:,} models x 2 (unlearned and "
                        f"retrained) x {forget_size:,} forget samples x 8 bytes", per, available)


def check_image_size(side: int | None, channels: int, rows: int, option: str = "--image-size",
                     available: int | None = None) -> None:
    """Refuse an image side whose one batch of ``rows`` inputs cannot fit in memory."""
    if not side:
        return
    per = channels * side * side * FLOAT32
    need = rows * per
    available = available_memory() if available is None else available
    if available is None or need <= available:
        return
    most = int((available / (rows * channels * FLOAT32)) ** 0.5)
    raise SftcError(f"{option} {side}: one batch of {rows} inputs alone would take {rows} x "
                    f"{channels} channel(s) x {side:,} x {side:,} pixels x 4 bytes = "
                    f"{size_text(need)}, more than the {size_text(available)} of memory "
                    f"available here; give {option} {most:,} or less")


def image_side(text: str) -> int:
    """An argparse type for --image-size: a whole number of 2 pixels or more (at 1 pixel every
    image is reduced to its mean per channel, and a model trains to chance)."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    if value < MIN_IMAGE_SIDE:
        raise argparse.ArgumentTypeError(
            f"{value} shrinks every image to one pixel per channel, its mean brightness: no shape "
            f"is left and a model trains to chance; give at least {MIN_IMAGE_SIDE} (the "
            "built-in models are made for 4 or more)")
    return value


def small_image_note(side: int | None, stored: int | None) -> str | None:
    """A warning for a side below :data:`SMALL_IMAGE_SIDE` that shrinks the stored images."""
    if not side or side >= SMALL_IMAGE_SIDE or (stored is not None and side >= stored):
        return None
    was = f" from {stored}x{stored}" if stored else ""
    return (f"--image-size {side} shrinks every image{was} to {side}x{side} pixels: most of its "
            f"shape is lost and the model will be far weaker (the built-in models are made for "
            f"{SMALL_IMAGE_SIDE} or more)")
