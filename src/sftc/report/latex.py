"""LaTeX rendering of Table-1-shaped tables: best in \\textbf, second best \\underline (as the
paper marks them), booktabs rules."""
from __future__ import annotations

import math

from .tables import rank_marks

_ESCAPES = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
            "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}
_HEADERS = {"acc_err_retrain": r"$AccErr_{\{M_u,M_R\}}$ ($\downarrow$)",
            "acc_dis": r"AccDis ($\downarrow$)",
            "acc_err_original": r"$AccErr_{\{M_u,M\}}$ ($\downarrow$)",
            "js": r"JS ($\uparrow$)", "mia": r"MIA ($\uparrow$)"}


def latex_escape(text: str) -> str:
    return "".join(_ESCAPES.get(ch, ch) for ch in str(text))


def _cell(row: dict, col, mark: str | None, spread: bool) -> str:
    if row.get("failed"):
        return "failed"
    value = row.get(col.key)
    if value is None:
        return "--"
    if isinstance(value, str):
        return latex_escape(value)
    if isinstance(value, float) and math.isinf(value):
        text = r"$\infty$"
    else:
        text = col.fmt.format(value)
        std = row.get(f"{col.key}_std")
        if spread and std is not None:
            text += r" {\scriptsize$\pm$" + col.fmt.format(std) + "}"
    if mark == "best":
        return rf"\textbf{{{text}}}"
    if mark == "second":
        return rf"\underline{{{text}}}"
    return text


def latex_table(rows: list[dict], columns, caption: str | None = None, label: str | None = None,
                label_key: str = "label", spread: bool = True) -> str:
    """A complete ``table`` environment (needs ``\\usepackage{booktabs}``)."""
    marks = rank_marks(rows, columns, label_key)
    headers = ["Method"] + [_HEADERS.get(c.key, latex_escape(c.header)) for c in columns]
    lines = [r"\begin{table}[t]", r"\centering", r"\begin{tabular}{l" + "r" * len(columns) + "}",
             r"\toprule", " & ".join(headers) + r" \\", r"\midrule"]
    for i, row in enumerate(rows):
        cells = [latex_escape(row.get(label_key, ""))]
        cells += [_cell(row, c, marks.get((i, c.key)), spread) for c in columns]
        lines.append(" & ".join(cells) + r" \\")
        if row.get(label_key) == "RT":
            lines.append(r"\midrule")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        lines.append(rf"\caption{{{latex_escape(caption)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"
