"""The demo's protocol: the main job on the embedded default (digits), as data.

:func:`run_demo` trains the original model and the oracle on the digits-memorising preset's data
(300 training images, 30 epochs: the original memorises them), unlearns the forget set with every
chosen method at one setting, and, with references, with SFTC ``--until forgotten``
(:mod:`sftc.bench.until`); then evaluates every model with the paper's metrics
(:class:`sftc.metrics.Evaluator`) and the audit's evidence (:class:`~sftc.bench.attack_columns.
AttackColumns`). It returns a :class:`DemoResult`; :func:`sftc.report.demo.write_demo` writes its
files and ``sftc demo`` prints it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..errors import SftcError
from ..recipes import TRAIN_EPOCHS, UNLEARN_EPOCHS, UNLEARN_LR, TrainingRecipe

TRACK = ("retain", "forget", "test")
DEFAULT_FORGET = "random:0.3"
#: The demo's data: the digits-memorising preset's subsets (docs/benchmark.md).
TRAIN_SUBSET, TEST_SUBSET, REFERENCES = 300, 300, 8
UNTIL_LABEL = "SFTC until"


@dataclass
class DemoConfig:
    forget: str = DEFAULT_FORGET
    train_subset: int = TRAIN_SUBSET
    test_subset: int = TEST_SUBSET
    references: int = REFERENCES
    cache_dir: object = None
    model: str = "small-cnn"
    epochs: int = TRAIN_EPOCHS
    unlearn_epochs: int = UNLEARN_EPOCHS
    lr: float = UNLEARN_LR
    methods: tuple[str, ...] = ()
    until: bool = True
    seed: int = 0
    device: str = "auto"
    mia_iterations: int = 1000
    accel: object = None
    progress: bool = True

    def check(self) -> None:
        from .. import limits

        if self.references < 0 or 0 < self.references < 4:
            raise SftcError(f"--references must be 0 (no attack) or 4 or more (models retrained "
                            f"without D_f), got {self.references}")
        limits.check_references(self.references, self.train_subset + self.test_subset, 10)


@dataclass
class DemoResult:
    split: object
    rows: list[dict]
    runs: dict
    original: object               # api.RunResult
    oracle: object
    models: dict                   # name -> unlearned model (the methods', and "until")
    until: object = None           # bench.until.SearchResult
    oracle_accuracies: dict = field(default_factory=dict)
    wall_seconds: float = 0.0


def _unlearn_each(config: DemoConfig, split, original, common: dict, say) -> tuple[list, dict,
                                                                                     dict]:
    from tqdm.auto import tqdm

    from .. import api
    from ..methods import create_method, method_class
    from ..methods.cf_eu_k import default_k

    models, runs, unlearned = [], {}, {}
    bar = tqdm(config.methods, desc="methods", unit="method", disable=not config.progress,
               dynamic_ncols=True)
    for name in bar:
        bar.set_postfix(method=name)
        hparams = {"k": default_k(config.model)} if "k" in method_class(name).hparams else {}
        result = api.unlearn(original, split, name, epochs=config.unlearn_epochs, lr=config.lr,
                             track=TRACK, model_name=config.model, **hparams, **common)
        label = create_method(name, **hparams).label or name
        models.append((label, name, result.model, result.seconds))
        runs[label] = {"config": result.config, "history": result.history.rows,
                       "seconds": result.seconds}
        unlearned[name] = result.model
    bar.close()
    return models, runs, unlearned


def _until(config: DemoConfig, split, original, recipe: TrainingRecipe):
    """SFTC ``--until forgotten`` with the demo's references (the attack's, already cached)."""
    from .audit import AuditConfig
    from .until import SearchConfig, unlearn_until_forgotten

    search = SearchConfig(method="sftc", seed=config.seed, model_name=config.model)
    audit = AuditConfig(references=config.references, recipe=recipe, cache_dir=config.cache_dir,
                        paper_metrics=False, accel=config.accel)
    return unlearn_until_forgotten(original, split, config=search, audit_config=audit,
                                   device=config.device, progress=False)


def run_demo(config: DemoConfig, say=print) -> DemoResult:
    """Train, unlearn, evaluate (module docstring); ``say`` prints the four steps."""
    from tqdm.auto import tqdm

    from .. import api
    from ..engine import resolve_device
    from ..metrics import Evaluator
    from .attack_columns import AttackColumns
    from .config import ReferenceConfig
    from .split import make_split

    started = time.perf_counter()
    config.check()
    data = ReferenceConfig(dataset="digits", train_subset=config.train_subset,
                           test_subset=config.test_subset, forget=config.forget,
                           forget_seed=config.seed)
    data.validate_reference()
    split = make_split(data)
    common = dict(seed=config.seed, device=config.device, progress=config.progress,
                  accel=config.accel)
    say(f"[1/4] training the original model and the oracle ({config.model}, {config.epochs} "
        "epochs)")
    original = api.train(split, config.model, epochs=config.epochs, track=TRACK, **common)
    oracle = api.retrain(split, config.model, epochs=config.epochs, track=TRACK, **common)
    until = config.until and config.references and "sftc" in config.methods
    if until:
        from .until import require_optuna

        try:
            require_optuna()                            # an optional extra (sftc[search])
        except SftcError as missing:
            until = False
            say(f"(SFTC until forgotten left out: {missing})")
    say(f"[2/4] unlearning {len(split.forget)} samples (forget set {config.forget}"
        f"{', the demo default' if config.forget == DEFAULT_FORGET else ''}) with "
        f"{len(config.methods)} methods" + (" and SFTC until forgotten" if until else ""))
    models, runs, unlearned = _unlearn_each(config, split, original.model, common, say)
    models = [("ORI", None, original.model, None), ("RT", None, oracle.model, oracle.seconds),
              *models]
    recipe = TrainingRecipe(config.model, epochs=config.epochs, source="the demo's original")
    attack = None
    if config.references:
        attack = AttackColumns.for_recipe(split, recipe, config.references, config.cache_dir,
                                          device_name=config.device, progress=config.progress,
                                          accel=config.accel)
        attack.prepare()
    searched = _until(config, split, original.model, recipe) if until else None
    if searched is not None:
        models.append((UNTIL_LABEL, "sftc", searched.model, searched.timings["search_seconds"]))
        unlearned["until"] = searched.model
    say(f"[3/4] evaluating {len(models)} models" + (
        f" (the paper's metrics, and the audit's evidence with {config.references} reference "
        "models, cached after the first run)" if config.references else ""))
    # after every timed run, so that no timing shares the CPU with the attackers
    with Evaluator(original.model, split, oracle.model, device=config.device,
                   mia_iterations=config.mia_iterations, seed=config.seed) as evaluator:
        pending = [(label, name, evaluator.submit(model, unlearn_seconds=seconds,
                                                  retrain_seconds=oracle.seconds))
                   for label, name, model, seconds in models]
        device = resolve_device(config.device)
        attacked = {label: attack.model_metrics(model, device)
                    for label, _, model, _ in models} if attack is not None else {}
        rows = [{"label": label, **({"method": name} if name else {}), **metrics.result(),
                 **attacked.get(label, {})}
                for label, name, metrics in tqdm(pending, desc="evaluating", unit="model",
                                                 disable=not config.progress,
                                                 dynamic_ncols=True)]
        oracle_acc = evaluator.reference_accuracies()["retrained"]
    if attack is not None:
        for row in rows:
            row["rmia_verdict"] = attack.verdict(rows[0], row)
    return DemoResult(split, rows, runs, original, oracle, unlearned, searched, oracle_acc,
                      time.perf_counter() - started)
