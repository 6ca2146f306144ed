"""The contract of a per-example membership attack, and its registry.

An attack turns what reference models and the target model output on a set of candidate samples
into one membership score per candidate (higher: more likely a member). It sees everything through
an :class:`AttackView`: the target's and the references' *signals* (functions of the logits and
the true labels, computed once per view) on the candidates and on the population (samples no
model trained on), and which reference trained on which candidate. The audit, the benchmark's
attack columns and the demo call every registered attack the same way, so an attack is one small
class::

    from sftc.metrics.attacks import Attack, register_attack

    @register_attack
    class LossAttack(Attack):
        name = "loss"
        label = "loss threshold"
        meaning = "the target's log-probability of the true label, uncalibrated"
        min_references = 0

        def score(self, view):
            return view.target("log_prob")

Signals are named (:data:`SIGNALS`: ``log_prob``, RMIA's log Pr(y | x); ``confidence``, LiRA's
logit-scaled confidence); ``view.target_logits`` and ``view.ref_logits`` give the raw logits for
anything else. Plugins add attacks with ``@register_attack`` in a ``--plugin`` file or through the
entry-point group ``sftc.attacks``.
"""
from __future__ import annotations

from typing import Callable, ClassVar

import numpy as np

from ...errors import SftcError
from ...plugins import GROUPS
from ...registry import Registry
from .signals import logit_scaled_confidence, true_class_log_prob

#: Named per-sample signals of logits [..., n, C] and labels [n].
SIGNALS: dict[str, Callable] = {"log_prob": true_class_log_prob,
                                "confidence": logit_scaled_confidence}


class AttackView:
    """What an attack may read about one target model, at the candidate columns.

    ``target_logits`` [n, C] and ``ref_logits`` [K, n, C]: the target's and the K references'
    logits on the n candidates; ``labels`` [n]; ``in_mask`` bool [K, n]: which reference trained on
    which candidate; ``population``: the same for the m population samples (``target_logits``
    [m, C], ``ref_logits`` [K, m, C], ``labels`` [m]), None when the caller has none.
    :meth:`resampled` gives the same view over another choice of reference models (rows, with
    repetition), for the interval's bootstrap over references.
    """

    def __init__(self, target_logits, ref_logits, labels, in_mask,
                 population: tuple | None = None, _signals: dict | None = None,
                 _rows: np.ndarray | None = None):
        self.target_logits = target_logits
        self.ref_logits = ref_logits
        self.labels = labels
        self._mask = np.asarray(in_mask, dtype=bool)
        self._population = population
        self._signals = {} if _signals is None else _signals    # shared with resampled views
        self._rows = _rows

    @property
    def references(self) -> int:
        return int(self._mask.shape[0] if self._rows is None else len(self._rows))

    @property
    def in_mask(self) -> np.ndarray:
        return self._mask if self._rows is None else self._mask[self._rows]

    def _signal(self, name: str, part: str) -> np.ndarray:
        if name not in SIGNALS:
            raise SftcError(f"unknown attack signal {name!r}; use {', '.join(SIGNALS)} or read "
                            "view.target_logits / view.ref_logits")
        key = (name, part)
        if key not in self._signals:
            if part in ("target_pop", "refs_pop") and self._population is None:
                raise SftcError("this attack needs population samples (never in any training "
                                "set); give the split a validation part")
            logits, labels = {
                "target": (self.target_logits, self.labels),
                "refs": (self.ref_logits, self.labels),
                "target_pop": (None if self._population is None else self._population[0],
                               None if self._population is None else self._population[2]),
                "refs_pop": (None if self._population is None else self._population[1],
                             None if self._population is None else self._population[2]),
            }[part]
            self._signals[key] = SIGNALS[name](logits, labels)
        return self._signals[key]

    def target(self, signal: str) -> np.ndarray:
        """The target's ``signal`` on the candidates, [n]."""
        return self._signal(signal, "target")

    def refs(self, signal: str) -> np.ndarray:
        """The references' ``signal`` on the candidates, [K, n]."""
        values = self._signal(signal, "refs")
        return values if self._rows is None else values[self._rows]

    def target_population(self, signal: str) -> np.ndarray:
        """The target's ``signal`` on the population, [m]."""
        return self._signal(signal, "target_pop")

    def refs_population(self, signal: str) -> np.ndarray:
        """The references' ``signal`` on the population, [K, m]."""
        values = self._signal(signal, "refs_pop")
        return values if self._rows is None else values[self._rows]

    def resampled(self, rows: np.ndarray) -> "AttackView":
        """The view with references ``rows`` (indices into the K references, repeats allowed);
        signals are shared, not recomputed."""
        rows = np.asarray(rows, dtype=np.int64)
        base = rows if self._rows is None else self._rows[rows]
        return AttackView(self.target_logits, self.ref_logits, self.labels, self._mask,
                          self._population, self._signals, base)


class Attack:
    """Base class of a membership attack: set the class attributes, implement :meth:`score`.

    Attributes:
        name: registry name (``rmia-online``); ``aliases``: other names (``rmia``).
        label: how tables and reports name it (``RMIA online``).
        meaning: one line for the report: what the score is.
        paper: the citation.
        min_references: fewest reference models it can be computed with.
        needs_members: it reads reference models that trained on the candidates (online
            attacks); the audit's references never do (they are retrained without D_f), so
            the audit decides with attacks that read models that never saw them.
    """

    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    label: ClassVar[str] = ""
    meaning: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    min_references: ClassVar[int] = 2
    needs_members: ClassVar[bool] = False

    def score(self, view: AttackView) -> np.ndarray:
        """Membership scores of the candidates, [n] (higher: more likely a member)."""
        raise NotImplementedError

    def settings(self, view: AttackView) -> dict:
        """What the attack resolved on this view (recorded beside its figures)."""
        return {}

    def scores_checked(self, view: AttackView) -> np.ndarray:
        """:meth:`score`, checked: one finite value per candidate (an attack's own failure, or
        scores that are not numbers, blamed on its file and line in one line)."""
        from ...plugins import defined_at, plugin_failed

        code = type(self).score
        try:
            raw = self.score(view)
        except SftcError:
            raise
        except Exception as exc:       # the attack's own code failed (a plugin's)
            raise plugin_failed(f"attack {self.name!r}", exc, code) from None
        kind = np.asarray(raw).dtype.kind if not isinstance(raw, str) else "U"
        if kind not in "biuf":
            raise SftcError(f"attack {self.name!r} ({defined_at(code)}) returned "
                            f"{type(raw).__name__} scores of kind {kind!r}, not numbers; return "
                            "one float per candidate")
        scores = np.asarray(raw, dtype=np.float64)
        n = len(view.labels)
        if scores.shape != (n,):
            raise SftcError(f"attack {self.name!r} returned scores shaped {scores.shape} for "
                            f"{n} candidates; return one score per candidate")
        if not np.isfinite(scores).all():
            raise SftcError(f"attack {self.name!r} returned NaN or infinite scores")
        return scores


def _adopt(name: str, cls) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Attack)):
        raise SftcError(f"plugin attack {name!r} is a {type(cls).__name__}, not a subclass of "
                        "sftc.metrics.attacks.Attack")
    if not cls.name:
        cls.name = name
    register_attack(cls)


#: Attack classes by name (case-insensitive), in registration order.
ATTACKS: Registry[type[Attack]] = Registry("attack", ignore_case=True,
                                           group=GROUPS["attack"], adopt=_adopt)


def register_attack(cls: type[Attack]) -> type[Attack]:
    """Class decorator: make an attack available by its ``name`` (and ``aliases``)."""
    if not (isinstance(cls, type) and issubclass(cls, Attack)):
        raise SftcError(f"@register_attack takes a subclass of Attack, got {cls!r}")
    if not cls.name:
        raise SftcError(f"attack class {cls.__name__} has no name")
    if not isinstance(cls.min_references, int) or cls.min_references < 0:
        raise SftcError(f"attack {cls.name!r}: min_references must be a whole number 0 or more")
    return ATTACKS.add(cls.name, cls, cls.aliases)


def list_attacks() -> list[str]:
    return ATTACKS.names()


def attack_class(name: str) -> type[Attack]:
    return ATTACKS.find(name)


def create_attack(name: str) -> Attack:
    """An instance of the attack registered as ``name`` (or one of its aliases)."""
    return attack_class(name)()
