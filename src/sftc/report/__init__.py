"""All presentation: tables (text, Markdown, CSV, LaTeX), figures and reports, from data.

``tables``/``latex``: Table-1-shaped tables; ``table1``: a benchmark's table files;
``benchmark``: everything a benchmark writes; ``sensitivity``: everything a sweep writes;
``plots``: figures; ``text``: metrics as text; ``demo``: the demo's report.
"""
from .plots import convergence_figure, save_figure
from .tables import (ACCURACY_COLUMNS, TABLE1_COLUMNS, Column, format_table, rank_marks,
                     table_rows_csv)

__all__ = ["convergence_figure", "save_figure", "ACCURACY_COLUMNS", "TABLE1_COLUMNS", "Column",
           "format_table", "rank_marks", "table_rows_csv"]
