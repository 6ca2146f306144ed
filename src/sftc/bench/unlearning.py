"""One unlearning run as the benchmark and the sweep make it; a failure is recorded, not raised.

From the seed's original model, at a constant learning rate, with a callback after every epoch.
"""
from __future__ import annotations

import traceback

from ..errors import DivergedError


def attempt_unlearn(ref, split, method: str, hparams: dict, *, config, lr: float, epochs: int,
                    seed: int, device: str, progress: bool, on_epoch_end,
                    log=None) -> tuple[str, str | None]:
    """Run ``method`` on ``ref.original``; returns (status, reason): ``ok``, ``diverged`` (a
    non-finite loss or logits) or ``failed`` (any other exception, logged with ``log``).
    Ctrl-C is never swallowed."""
    from .. import api

    try:
        api.unlearn(ref.original, split, method, epochs=epochs, lr=lr,
                    batch_size=config.batch_size, seed=seed, device=device, progress=progress,
                    model_name=config.model, on_epoch_end=on_epoch_end, **hparams)
    except KeyboardInterrupt:
        raise
    except DivergedError as exc:
        return "diverged", str(exc)
    except Exception as exc:  # a failing run is recorded and the benchmark goes on
        reason = first_line(exc)
        if log is not None:
            log(f"{method} lr={lr:g} seed={seed} failed: {reason}\n"
                + "".join(traceback.format_exception_only(type(exc), exc)).strip())
        return "failed", reason
    return "ok", None


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (what a result records as the reason)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
