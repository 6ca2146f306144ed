"""Data layer: tensors in memory, the split object, forget specifications, datasets by name."""
from . import cifar10 as _cifar10  # noqa: F401  (each import registers its dataset)
from . import diamonds as _diamonds  # noqa: F401
from . import digits as _digits  # noqa: F401
from . import fashion_mnist as _fashion_mnist  # noqa: F401
from . import fer2013 as _fer2013  # noqa: F401
from . import imagefolder as _imagefolder  # noqa: F401
from . import mufac as _mufac  # noqa: F401
from . import tables as _tables  # noqa: F401
from .forget import resolve_forget
from .images import ImageData
from .registry import (DatasetInfo, LoadedDataset, SkippedSamplesWarning, dataset_info,
                       list_datasets, load_dataset, load_split, register_dataset, split_loaded)
from .split import Split

__all__ = ["ImageData", "Split", "DatasetInfo", "LoadedDataset", "SkippedSamplesWarning",
           "dataset_info", "list_datasets", "load_dataset", "load_split", "register_dataset",
           "resolve_forget", "split_loaded"]
