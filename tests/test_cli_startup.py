"""`sftc --help` and `sftc COMMAND --help` import nothing heavy, and what the help quotes is true.

Start-up time itself is measured in docs/performance.md, never asserted here.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "torchvision", "sklearn", "catboost")
SRC = str(Path(__file__).resolve().parents[1] / "src")

PROBE = """
import json, sys
from sftc.cli import build_parser, main
commands = sorted(build_parser()._subparsers._group_actions[0].choices)
for argv in [["--help"], ["--version"]] + [[c, "--help"] for c in commands]:
    try:
        main(argv)
    except SystemExit:
        pass
import sftc                       # the package itself is lazy too
sftc.__version__, sftc.SftcError
print(json.dumps({"commands": commands,
                  "heavy": sorted(m for m in %r if m in sys.modules)}), file=sys.stderr)
""" % (HEAVY,)


def test_help_of_every_command_imports_no_heavy_module():
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stderr.strip().splitlines()[-1])
    assert {"train", "unlearn", "evaluate", "audit", "benchmark", "sweep", "methods",
            "data", "demo", "forgetting-score"} <= set(found["commands"])
    assert found["heavy"] == [], f"--help imported {found['heavy']}"


def test_the_catalog_quotes_the_registries_and_defaults():
    """The help's static names and defaults are the real ones (sftc's own entries)."""
    import sftc
    from sftc import api
    from sftc.bench.audit import REFERENCES, applicable_attacks
    from sftc.bench.evidence import EvidenceSettings
    from sftc.bench.forgetting import ORIGINALS
    from sftc.cli import catalog
    from sftc.metrics.attacks import ALPHA
    from sftc.metrics.mia import ATTACKERS

    assert list(catalog.DATASETS) == sftc.list_datasets()
    assert list(catalog.MODELS) == sftc.list_models()
    assert list(catalog.METHODS) == sftc.list_methods()
    assert (catalog.UNLEARN_EPOCHS, catalog.UNLEARN_LR) == (api.UNLEARN_EPOCHS, api.UNLEARN_LR)
    assert (catalog.TRAIN_EPOCHS, catalog.TRAIN_LR) == (api.TRAIN_EPOCHS, api.TRAIN_LR)
    assert set(catalog.ATTACKS) == {"rmia", "lira", *applicable_attacks(REFERENCES)}
    assert all(sftc.metrics.attacks.create_attack(a).name in applicable_attacks(REFERENCES)
               for a in catalog.ATTACKS)
    assert (catalog.ALPHA, catalog.RESOLUTION, catalog.REFERENCES) == \
        (ALPHA, EvidenceSettings.resolution, REFERENCES)
    assert (catalog.ORIGINALS, catalog.MIA_ATTACKERS) == (ORIGINALS, ATTACKERS)


@pytest.mark.parametrize("name", ["unlearn", "Split", "create_model", "list_methods", "audit",
                                  "register_method", "register_dataset", "load_plugin"])
def test_public_names_are_served_lazily(name):
    import sftc

    assert getattr(sftc, name) is not None and name in dir(sftc) and name in sftc.__all__
    assert sftc.methods.METHODS is not None        # submodules too
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        sftc.nothing_here
