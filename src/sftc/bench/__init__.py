"""The paper's experiments: Table 1 and Figure 4 (run_benchmark), Figure 5 (run_sweep).

Where things live: ``config`` (what determines the numbers; preset -> config), ``presets``,
``store`` (the output directory: manifest, resume, layout), ``session`` (what both protocols
share), ``split``, ``references`` (M and M_R per seed, typed), ``grid`` (the benchmark's runs),
``final`` (kept settings, JS/MIA: Table 1 as data), ``selection`` and ``stats`` (the rule, means
over seeds), ``benchmark`` and ``sweep`` (the two protocols). Tables and figures: sftc.report.
"""
from .benchmark import Benchmark, run_benchmark
from .cache import TrainSpec, default_cache_dir, get_or_train
from .config import DEFAULT_VALUES, BenchmarkConfig, SweepConfig, make_config
from .presets import (PAPER_LRS, PRESETS, Preset, get_preset, list_presets, methods_for,
                      register_preset)
from .selection import Setting, select_setting, selection_score
from .sweep import Sweep, run_sweep

__all__ = ["TrainSpec", "default_cache_dir", "get_or_train", "PAPER_LRS", "PRESETS", "Preset",
           "get_preset", "list_presets", "methods_for", "register_preset", "Benchmark",
           "BenchmarkConfig", "make_config", "run_benchmark", "Setting", "select_setting",
           "selection_score", "DEFAULT_VALUES", "Sweep", "SweepConfig", "run_sweep"]
