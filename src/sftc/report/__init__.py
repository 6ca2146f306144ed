"""Readable results: Table-1-shaped tables (plain, Markdown, CSV) and convergence figures."""
from .plots import convergence_figure, save_figure
from .tables import (ACCURACY_COLUMNS, TABLE1_COLUMNS, Column, format_table, rank_marks,
                     table_rows_csv)

__all__ = ["convergence_figure", "save_figure", "ACCURACY_COLUMNS", "TABLE1_COLUMNS", "Column",
           "format_table", "rank_marks", "table_rows_csv"]
