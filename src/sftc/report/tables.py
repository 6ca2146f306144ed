"""Tables shaped like the paper's Table 1, with best/second-best marks per column."""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    better: str | None = None   # "min", "max", "half" (closest to 0.5) or None (not ranked)
    fmt: str = "{:.4f}"
    #: A forgetting column: a row is marked there only when it does better than ORI.
    forgetting: bool = False


def _columns(place: str) -> tuple[Column, ...]:
    """The columns sftc's metric declarations put at ``place`` (:mod:`sftc.metrics.declarations`),
    in declaration order."""
    from ..metrics.registry import METRICS

    return tuple(Column(m.key, m.header, m.better, m.fmt, m.forgetting)
                 for m in (METRICS.find(k) for k in METRICS.names()) if m.place == place)


def user_columns(rows: list[dict]) -> tuple[Column, ...]:
    """A column for every user metric (``@register_metric``) that the rows carry."""
    from ..metrics.registry import user_metrics

    return tuple(Column(m.key, m.header, m.better, m.fmt, m.forgetting) for m in user_metrics()
                 if any(r.get(m.key) is not None for r in rows))


#: The five columns of Table 1 (section 5.5), with the direction the paper marks (↓ / ↑).
TABLE1_COLUMNS = _columns("table1")
#: The per-example attack's columns (:mod:`sftc.bench.attack_columns`), beside the paper's five
#: when the benchmark ran with attack references: the audit's matched AUC (best: closest to the
#: never-seen level, ~0.5) and TPR at 1 % FPR (lower: fewer forget samples exposed).
ATTACK_COLUMNS = _columns("attack")


def table1_columns(rows: list[dict]) -> tuple[Column, ...]:
    """Table 1's columns for these rows: the paper's five, the attack's two when any row has
    them, and any user metric the rows carry."""
    columns = TABLE1_COLUMNS
    if any(r.get("rmia_auc") is not None for r in rows):
        columns = columns + ATTACK_COLUMNS
    return columns + user_columns(rows)


ACCURACY_COLUMNS = _columns("accuracy")
REFERENCE_ROWS = ("ORI", "RT")


def fmt(value, spec: str = "{:.4f}") -> str:
    """A value for prose and small tables: ``—`` when missing, ``∞`` when infinite."""
    if value is None:
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    try:
        return spec.format(value)
    except (ValueError, TypeError):
        return str(value)


def _value(row: dict, key: str):
    value = row.get(key)
    if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
        return float(value)
    return None


def _shown(value: float, col: Column) -> float:
    """The value as the table prints it, so that cells that read the same share a mark."""
    try:
        return float(col.fmt.format(value))
    except (TypeError, ValueError):
        return value


def badness(value: float, col: Column) -> float:
    """How far ``value`` is from the column's ideal: smaller is better."""
    if col.better == "min":
        return value
    if col.better == "max":
        return -value
    if col.better == "half":
        return abs(value - 0.5)
    raise ValueError(f"column {col.key} is not ranked")


#: The one-sided level of Welch's test a difference must pass to earn a mark (``held`` marks).
HELD_ALPHA = 0.05


def held_better(a: dict, b: dict, col: Column, alpha: float = HELD_ALPHA) -> bool:
    """Whether row ``a`` is better than row ``b`` in ``col`` beyond their spread over seeds:
    Welch's one-sided t-test on the means (``KEY``, ``KEY_std``, ``n_seeds``) at level ``alpha``;
    rows without a spread (one seed) compare as printed."""
    from scipy import stats

    va, vb = _shown(_value(a, col.key), col), _shown(_value(b, col.key), col)
    ga, gb = badness(va, col), badness(vb, col)
    na, nb = int(a.get("n_seeds") or 1), int(b.get("n_seeds") or 1)
    sa, sb = a.get(f"{col.key}_std"), b.get(f"{col.key}_std")
    if na < 2 or nb < 2 or sa is None or sb is None:
        return ga < gb
    va_, vb_ = sa ** 2 / na, sb ** 2 / nb
    if va_ + vb_ == 0:
        return ga < gb
    df = (va_ + vb_) ** 2 / (va_ ** 2 / (na - 1) + vb_ ** 2 / (nb - 1))
    return (gb - ga) / math.sqrt(va_ + vb_) > stats.t.ppf(1 - alpha, df)


def remembered(row: dict) -> bool:
    """Whether the audit judged the row remembered (its verdict, or the most frequent one over
    its seeds, ties to the first in order)."""
    verdict = row.get("rmia_verdict")
    counts = row.get("rmia_verdicts") or {}
    if not verdict and counts:
        verdict = max(sorted(counts), key=lambda v: counts[v])
    return bool(verdict) and verdict.startswith("not-forgotten") and "remembered" in verdict


def _held_marks(rows, col, candidates, marks) -> None:
    """Best: the best row and every row not held worse than it (ties); second: likewise among
    the rest."""
    order = [i for i, _ in sorted(candidates, key=lambda c: c[1])]
    for mark in ("best", "second"):
        if not order:
            return
        leader = order[0]
        group = [i for i in order if i == leader or not held_better(rows[leader], rows[i], col)]
        for i in group:
            marks[(i, col.key)] = mark
        order = [i for i in order if i not in group]


def rank_marks(rows: list[dict], columns, label_key: str = "label",
               baseline: str = "ORI", held: bool = False) -> dict[tuple[int, str], str]:
    """{(row position, column key): "best" | "second"}: the marking rule (docs/benchmark.md).

    1. Every row that has a value is ranked, the references ORI (do nothing) and RT (retrain)
       included; a failed row is not.
    2. Values are compared as printed (the column's format), so cells that read the same share
       a mark; "best" goes to the best printed value, "second" to the next distinct one.
    3. In a forgetting column (``Column.forgetting``: AccDis, JS, MIA, the attack's), only rows
       that do strictly better than the ``baseline`` row (ORI) as printed are candidates: a row
       that forgets no better than doing nothing is never marked there (ORI itself included).
       Without a baseline value the column is ranked like the others.
    4. ``held``: a difference counts only where it holds over the seeds (:func:`held_better`,
       Welch's one-sided t-test at 5 %): rows not held worse than the best share its mark (a tie
       prints as a tie), and a forgetting column needs a row held better than ORI. Rows of one
       seed compare as printed.
    5. In the attack's columns (``rmia_*``) a row the audit judged remembered (its verdict, or
       the most frequent over its seeds, is ``not-forgotten (remembered)``) is never marked: a
       low figure there does not make a model that still remembers D_f a good forgetter.
    """
    marks: dict[tuple[int, str], str] = {}
    base_row = next((r for r in rows if r.get(label_key) == baseline and not r.get("failed")),
                    None)
    for col in columns:
        if col.better is None:
            continue
        candidates = [(i, badness(_shown(_value(r, col.key), col), col))
                      for i, r in enumerate(rows)
                      if _value(r, col.key) is not None and not r.get("failed")
                      and not (col.key.startswith("rmia_") and remembered(r))]
        if col.forgetting and base_row is not None and _value(base_row, col.key) is not None:
            floor = badness(_shown(_value(base_row, col.key), col), col)
            candidates = [(i, v) for i, v in candidates if v < floor and (
                not held or held_better(rows[i], base_row, col))]
        if not candidates:
            continue
        if held:
            _held_marks(rows, col, candidates, marks)
            continue
        distinct = sorted({v for _, v in candidates})
        best = distinct[0]
        second = distinct[1] if len(distinct) > 1 else None
        for i, v in candidates:
            if v == best:
                marks[(i, col.key)] = "best"
            elif second is not None and v == second:
                marks[(i, col.key)] = "second"
    return marks


@dataclass(frozen=True)
class CellStyle:
    """How one output format writes a cell: missing and infinite values, the spread over seeds,
    and the marks of the best and second-best cells (prefix, suffix)."""

    missing: str
    infinity: str
    spread: tuple[str, str] | None
    best: tuple[str, str]
    second: tuple[str, str]
    escape: Callable[[str], str] = str


CELL_STYLES = {
    "plain": CellStyle("—", "∞", (" ± ", ""), ("", " *"), ("", " +")),
    "markdown": CellStyle("—", "∞", (" ± ", ""), ("**", "**"), ("<u>", "</u>")),
}


def render_cell(row: dict, col: Column, mark: str | None, style: CellStyle) -> str:
    """One table cell: the value in the column's format, its spread (``KEY_std``) when the style
    shows one, wrapped in the style's mark for best/second."""
    if row.get("failed"):
        return "failed"
    value = row.get(col.key)
    if value is None:
        return style.missing
    if isinstance(value, str):
        return style.escape(value)
    if isinstance(value, float) and math.isinf(value):
        text = style.infinity
    else:
        text = col.fmt.format(value)
        spread = row.get(f"{col.key}_std")
        if spread is not None and style.spread is not None:
            text += style.spread[0] + col.fmt.format(spread) + style.spread[1]
    wrap = {"best": style.best, "second": style.second}.get(mark)
    return f"{wrap[0]}{text}{wrap[1]}" if wrap else text


def format_table(rows: list[dict], columns, style: str = "plain", label_key: str = "label",
                 label_header: str = "Method", held: bool = False) -> str:
    """Render rows as an aligned plain-text table (best ``*``, second ``+``) or Markdown
    (best **bold**, second <u>underlined</u>, as the paper marks them); ``held``: marks only where
    a difference holds over seeds (:func:`rank_marks`)."""
    marks = rank_marks(rows, columns, label_key, held=held)
    headers = [label_header] + [c.header for c in columns]
    cell_style = CELL_STYLES[style]
    body = [[str(r.get(label_key, ""))] + [render_cell(r, c, marks.get((i, c.key)), cell_style)
                                           for c in columns] for i, r in enumerate(rows)]
    if style == "markdown":
        lines = ["| " + " | ".join(headers) + " |",
                 "|" + "|".join(["---"] + ["---:"] * len(columns)) + "|"]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return "\n".join(lines)
    widths = [max(len(h), *(len(b[j]) for b in body)) for j, h in enumerate(headers)]
    fmt_row = lambda cells: "  ".join(  # noqa: E731
        c.ljust(widths[j]) if j == 0 else c.rjust(widths[j]) for j, c in enumerate(cells))
    lines = [fmt_row(headers), "  ".join("-" * w for w in widths)] + [fmt_row(b) for b in body]
    if marks:
        lines.append("(* best, + second best, ORI and RT ranked too; in a forgetting column only "
                     "rows that beat ORI are marked)")
    return "\n".join(lines)


def table_rows_csv(rows: list[dict], columns, label_key: str = "label") -> str:
    """CSV with the raw numbers (and their spread where present)."""
    out = io.StringIO()
    keys = [label_key]
    for c in columns:
        keys.append(c.key)
        if any(f"{c.key}_std" in r for r in rows):
            keys.append(f"{c.key}_std")
    writer = csv.DictWriter(out, fieldnames=keys, extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: r.get(k, "") for k in keys})
    return out.getvalue()
