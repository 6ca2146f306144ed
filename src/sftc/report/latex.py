"""LaTeX rendering of Table-1-shaped tables: best in \\textbf, second best \\underline (as the
paper marks them), booktabs rules."""
from __future__ import annotations

from .tables import CellStyle, rank_marks, render_cell

_ESCAPES = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
            "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}
_HEADERS = {"acc_err_retrain": r"$AccErr_{\{M_u,M_R\}}$ ($\downarrow$)",
            "acc_dis": r"AccDis ($\downarrow$)",
            "acc_err_original": r"$AccErr_{\{M_u,M\}}$ ($\downarrow$)",
            "js": r"JS ($\uparrow$)", "mia": r"MIA ($\uparrow$)",
            "rmia_auc": r"RMIA AUC ($\to 0.5$)", "rmia_tpr": r"RMIA TPR@1\% ($\downarrow$)"}


def latex_escape(text: str) -> str:
    return "".join(_ESCAPES.get(ch, ch) for ch in str(text))


def latex_style(spread: bool) -> CellStyle:
    return CellStyle(missing="--", infinity=r"$\infty$",
                     spread=(r" {\scriptsize$\pm$", "}") if spread else None,
                     best=(r"\textbf{", "}"), second=(r"\underline{", "}"), escape=latex_escape)


def latex_table(rows: list[dict], columns, caption: str | None = None, label: str | None = None,
                label_key: str = "label", spread: bool = True, held: bool = False) -> str:
    """A complete ``table`` environment (needs ``\\usepackage{booktabs}``); ``held``: see
    :func:`~sftc.report.tables.rank_marks`."""
    marks = rank_marks(rows, columns, label_key, held=held)
    style = latex_style(spread)
    headers = ["Method"] + [_HEADERS.get(c.key, latex_escape(c.header)) for c in columns]
    lines = [r"\begin{table}[t]", r"\centering", r"\begin{tabular}{l" + "r" * len(columns) + "}",
             r"\toprule", " & ".join(headers) + r" \\", r"\midrule"]
    for i, row in enumerate(rows):
        cells = [latex_escape(row.get(label_key, ""))]
        cells += [render_cell(row, c, marks.get((i, c.key)), style) for c in columns]
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
