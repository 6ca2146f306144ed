"""Shared fixtures: a small digits split and a quickly trained original model."""
from __future__ import annotations

import pytest
import torch

import sftc

# Tiny models: one thread is faster than two fighting over a busy 2-core machine.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits_split():
    """digits with 10 % of every class forgotten (the embedded default protocol)."""
    return sftc.load_split("digits", "random:0.1", seed=0)


@pytest.fixture(scope="session")
def tiny_split():
    """A tiny random split (uint8 8x8 images, 4 classes) for fast smoke tests."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (120, 1, 8, 8), generator=g, dtype=torch.uint8)
    y = torch.arange(120) % 4
    xt = torch.randint(0, 256, (40, 1, 8, 8), generator=g, dtype=torch.uint8)
    yt = torch.arange(40) % 4
    return sftc.Split.from_tensors(x[:100], y[:100], "random:0.2", val=(x[100:], y[100:]),
                                   test=(xt, yt), num_classes=4)


@pytest.fixture(scope="session")
def digits_original(digits_split):
    """The original model: small CNN trained 8 epochs on digits (about 1 s on 2 cores)."""
    return sftc.train(digits_split, "small-cnn", epochs=8, seed=0, device="cpu", progress=False)


@pytest.fixture(scope="session")
def digits_retrained(digits_split):
    return sftc.retrain(digits_split, "small-cnn", epochs=8, seed=0, device="cpu", progress=False)


@pytest.fixture
def isolated_registries():
    """Whatever a test registers (plugins, entry points, specs) is gone afterwards: the methods,
    models, datasets, attacks and metrics registries and sys.modules are restored."""
    import sys
    import tempfile

    from sftc.data.registry import DATASETS
    from sftc.methods.registry import METHODS
    from sftc.metrics.attacks import ATTACKS
    from sftc.metrics.registry import METRICS
    from sftc.models import MODELS

    registries = (METHODS, MODELS, DATASETS, ATTACKS, METRICS)
    saved = [(dict(r._entries), dict(r._aliases), dict(r._specs), r._plugins_loaded)
             for r in registries]
    modules = set(sys.modules)
    path = list(sys.path)
    yield registries
    for registry, (entries, aliases, specs, loaded) in zip(registries, saved):
        registry._entries, registry._aliases, registry._specs = entries, aliases, specs
        registry._plugins_loaded = loaded
    tmp = tempfile.gettempdir()
    for name in set(sys.modules) - modules:      # the tests' plugin files, nothing installed
        if (getattr(sys.modules[name], "__file__", None) or "").startswith(tmp):
            del sys.modules[name]
    sys.path[:] = path
