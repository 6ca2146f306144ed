"""Data layer: tensors in memory, the split object, forget specifications, datasets by name."""
from . import digits as _digits  # noqa: F401  (registers the dataset)
from . import fashion_mnist as _fashion_mnist  # noqa: F401
from .forget import resolve_forget
from .images import ImageData
from .registry import (DatasetInfo, LoadedDataset, dataset_info, list_datasets, load_dataset,
                       load_split, register_dataset)
from .split import Split

__all__ = ["ImageData", "Split", "DatasetInfo", "LoadedDataset", "dataset_info", "list_datasets",
           "load_dataset", "load_split", "register_dataset", "resolve_forget"]
