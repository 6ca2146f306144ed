"""Progress of a benchmark or sweep: steps done, running and left, with time estimates.

Each unit of work (a reference training, an unlearning run, a final evaluation) has a kind and a
weight (its expected cost in sample-epochs). The estimate of what is left uses the seconds per
weight observed on finished units of the same kind (falling back to all kinds), so that a cheap
MIA evaluation does not distort the estimate of a long training.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from tqdm.auto import tqdm


@dataclass
class Unit:
    key: str
    kind: str
    label: str
    weight: float
    done: bool = False


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    def __init__(self, units: list[Unit], enabled: bool = True, desc: str = "benchmark"):
        self.units = {u.key: u for u in units}
        self.spent: dict[str, list[float]] = {}   # kind -> [seconds, weight]
        self.running: str | None = None
        self.started = time.perf_counter()
        self._t0 = 0.0
        done = sum(u.done for u in units)
        self.name = desc
        self.bar = tqdm(total=len(units), initial=done, desc=desc, disable=not enabled,
                        dynamic_ncols=True, position=0, bar_format="{desc} |{bar:16}|")
        self._refresh()

    # -- estimates -------------------------------------------------------------------------
    def _rate(self, kind: str) -> float | None:
        if kind in self.spent and self.spent[kind][1] > 0:
            return self.spent[kind][0] / self.spent[kind][1]
        total_s = sum(v[0] for v in self.spent.values())
        total_w = sum(v[1] for v in self.spent.values())
        return total_s / total_w if total_w > 0 else None

    def remaining_seconds(self) -> float | None:
        left = [u for u in self.units.values() if not u.done]
        total = 0.0
        for u in left:
            rate = self._rate(u.kind)
            if rate is None:
                return None
            total += rate * u.weight
        if self.running is not None:
            total -= min(time.perf_counter() - self._t0,
                         (self._rate(self.units[self.running].kind) or 0)
                         * self.units[self.running].weight)
        return max(total, 0.0)

    def counts(self) -> tuple[int, int, int]:
        done = sum(u.done for u in self.units.values())
        running = 1 if self.running is not None else 0
        return done, running, len(self.units) - done - running

    def _refresh(self) -> None:
        done, running, left = self.counts()
        now = f"running: {self.units[self.running].label} · " if self.running else ""
        self.bar.set_description_str(
            f"{self.name}: {done}/{len(self.units)} done · {now}{left} left · elapsed "
            f"{_clock(time.perf_counter() - self.started)} · ETA {_clock(self.remaining_seconds())}",
            refresh=True)

    # -- events ----------------------------------------------------------------------------
    def start(self, key: str) -> None:
        self.running = key
        self._t0 = time.perf_counter()
        self._refresh()

    def finish(self, key: str, measured: bool = True) -> None:
        unit = self.units[key]
        if not unit.done:
            unit.done = True
            if measured:
                seconds = time.perf_counter() - self._t0
                spent = self.spent.setdefault(unit.kind, [0.0, 0.0])
                spent[0] += seconds
                spent[1] += unit.weight
            self.bar.update(1)
        self.running = None
        self._refresh()

    def write(self, text: str) -> None:
        self.bar.write(text) if not self.bar.disable else None

    def close(self) -> None:
        self.running = None
        self._refresh()
        self.bar.close()
