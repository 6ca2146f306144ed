"""The paper's experiments: Table 1 and Figure 4 (:func:`run_benchmark`), Figure 5
(:func:`run_sweep`), named presets, the reference-model cache and the selection rule."""
from .cache import TrainSpec, default_cache_dir, get_or_train
from .presets import (PAPER_LRS, PRESETS, Preset, get_preset, list_presets, methods_for,
                      register_preset)
from .protocol import Benchmark, BenchmarkConfig, run_benchmark
from .selection import Setting, select_setting, selection_score
from .sweep import DEFAULT_VALUES, Sweep, SweepConfig, run_sweep

__all__ = ["TrainSpec", "default_cache_dir", "get_or_train", "PAPER_LRS", "PRESETS", "Preset",
           "get_preset", "list_presets", "methods_for", "register_preset", "Benchmark", "BenchmarkConfig",
           "run_benchmark", "Setting", "select_setting", "selection_score", "DEFAULT_VALUES",
           "Sweep", "SweepConfig", "run_sweep"]
