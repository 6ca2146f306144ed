"""The speed options of a run (:class:`Accel`), and the default that the environment gives.

Each switch is ``auto`` (decided: by :mod:`sftc.engine.rule`, a fixed rule that never reads a
clock, or in ``mode="measure"`` by timing before the run, see :mod:`sftc.engine.measure`),
``on`` or ``off`` (forced). The environment is read in one place, :func:`from_environment`,
which the API calls when a caller names no options (``sftc.train/retrain/unlearn(accel=None)``,
and so every command line):

* ``SFTC_ACCEL``: unset, ``auto`` or ``rule``: the rule; ``measure``: measured once per model,
  input shape and machine and persisted (below); ``off``, ``plain`` or ``0``: every choice off;
* ``SFTC_CACHE_DIR``: measured decisions persist in ``$SFTC_CACHE_DIR/accel`` (else
  ``$XDG_CACHE_HOME/sftc/accel``, else ``~/.cache/sftc/accel``).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Mapping

from ..errors import SftcError

SWITCHES = ("auto", "on", "off")
MODES = ("rule", "measure")
PLAIN_WORDS = ("off", "plain", "0")


@dataclass
class Accel:
    """Speed options of a run (see the module docstring and :mod:`sftc.engine.tuning`).

    ``inference_batch`` 0: the rule's (or the measured) batch of a teacher's pass. ``autocast``:
    ``off`` or ``bf16`` (changes results beyond rounding). ``exact_rewrites`` change no value, so
    ``auto`` and ``on`` both apply them. ``mode``: how ``auto`` switches are decided, ``rule``
    (bit-reproducible) or ``measure``; ``decisions_dir``: where measure mode keeps its decisions
    (None: measured for this run only, nothing persisted)."""

    channels_last: str = "auto"
    linear_convs: str = "auto"
    fused_optimizer: str = "auto"
    fold_bn: str = "auto"
    inference_batch: int = 0
    autocast: str = "off"
    exact_rewrites: str = "auto"
    mode: str = "rule"
    decisions_dir: str | None = None

    def validate(self) -> None:
        for name in ("channels_last", "linear_convs", "fused_optimizer", "fold_bn",
                     "exact_rewrites"):
            if getattr(self, name) not in SWITCHES:
                raise SftcError(f"accel {name} must be one of {', '.join(SWITCHES)}; "
                                f"got {getattr(self, name)!r}")
        if self.autocast not in ("off", "bf16"):
            raise SftcError(f"accel autocast must be off or bf16; got {self.autocast!r}")
        if not isinstance(self.inference_batch, int) or self.inference_batch < 0:
            raise SftcError(f"accel inference_batch must be 0 (decided) or positive; "
                            f"got {self.inference_batch!r}")
        if self.mode not in MODES:
            raise SftcError(f"accel mode must be rule or measure; got {self.mode!r}")

    @property
    def measuring(self) -> bool:
        return self.mode == "measure"

    @classmethod
    def plain(cls) -> "Accel":
        """Every optimisation off: the reference path."""
        return cls("off", "off", "off", "off", 0, "off", "off")

    @classmethod
    def measured(cls, decisions_dir: str | Path | None = None) -> "Accel":
        """``auto`` switches measured before the run, the decision kept in ``decisions_dir``."""
        return cls(mode="measure",
                   decisions_dir=str(decisions_dir) if decisions_dir is not None else None)

    @classmethod
    def parse(cls, value: "Accel | dict | str | None",
              environ: Mapping[str, str] | None = None) -> "Accel":
        """``None`` or ``"auto"``: the environment's default (:func:`from_environment`);
        ``"rule"``: the rule; ``"measure"``: measured and persisted; ``"off"``: the plain path;
        a dict: ``Accel`` fields; an ``Accel``: itself."""
        if value is None or value == "auto":
            return from_environment(environ)
        if value == "rule":
            return cls()
        if value == "off":
            return cls.plain()
        if value == "measure":
            return cls.measured(default_decisions_dir(environ))
        if isinstance(value, dict):
            known = [f.name for f in fields(cls)]
            unknown = sorted(set(value) - set(known))
            if unknown:
                raise SftcError(f"unknown accel option(s) {', '.join(map(str, unknown))}; "
                                f"the options are {', '.join(known)}")
            return cls(**value)
        if isinstance(value, cls):
            return value
        raise SftcError(f"accel must be 'auto', 'rule', 'measure', 'off', a dict or an Accel; "
                        f"got {value!r}")


def from_environment(environ: Mapping[str, str] | None = None) -> Accel:
    """The options of a run that names none, from ``SFTC_ACCEL`` (and ``SFTC_CACHE_DIR`` for
    measure mode): the one place the engine's environment is read."""
    if environ is None:   # the process's environment, read at the edge (sftc.settings)
        from ..settings import accel_word

        word, raw = accel_word()
        environ = {"SFTC_ACCEL": raw or ""}
        decisions = default_decisions_dir()
    else:
        word = environ.get("SFTC_ACCEL", "").strip().lower()
        decisions = None
    if word in ("", "auto", "rule"):
        return Accel()
    if word in PLAIN_WORDS:
        return Accel.plain()
    if word == "measure":
        return Accel.measured(decisions or default_decisions_dir(environ))
    raise SftcError(f"SFTC_ACCEL={environ['SFTC_ACCEL']!r} is not a speed mode; use auto (the "
                    "rule, the default), measure, or off")


def default_decisions_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$SFTC_CACHE_DIR/accel``, else ``$XDG_CACHE_HOME/sftc/accel``, else
    ``~/.cache/sftc/accel``: where measure mode keeps its decisions."""
    if environ is None:
        from ..settings import decisions_root

        return decisions_root()
    if environ.get("SFTC_CACHE_DIR"):
        return Path(environ["SFTC_CACHE_DIR"]) / "accel"
    base = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "sftc" / "accel"
