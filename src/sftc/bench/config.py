"""The configurations of a benchmark and a sweep, their checks, and preset -> config (make_config).

A configuration holds everything that determines the numbers; the store compares it on resume.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from ..data import dataset_info
from ..data.forget import check_seed
from ..errors import SftcError
from ..recipes import TRAIN_EPOCHS, TRAIN_LR
from ..methods import create_method, method_class
from ..metrics.mia import ATTACKERS
from ..models import canonical_model_name
from .presets import Preset, get_preset, methods_for

#: The parameters of SFTC's sweep in the paper (any hyperparameter of any method can be swept), and
#: the paper's ranges (section 5.6): learning rate 8e-5 ... 5e-3, τ in [0.5, 5] step 0.5, c in
#: [0, 1] step 0.1.
PARAMS = ("lr", "tau", "c")
DEFAULT_VALUES = {
    "lr": (8e-5, 9e-5) + tuple(m * 1e-4 for m in range(1, 10)) + tuple(m * 1e-3 for m in range(1, 6)),
    "tau": tuple(0.5 * i for i in range(1, 11)),
    "c": tuple(round(0.1 * i, 1) for i in range(0, 11)),
}


#: The table's options of a configuration (:func:`table_options`).
TABLE_FIELDS = ("data_file", "target", "id_column", "group_column")


def table_options(config) -> dict | None:
    """The table options of ``config`` as :func:`sftc.data.load_dataset` takes them."""
    table = {"file" if k == "data_file" else k: getattr(config, k, None) for k in TABLE_FIELDS}
    return table if any(v is not None for v in table.values()) else None


@dataclass
class ReferenceConfig:
    """What the benchmark and the sweep share: the data, the reference models' recipe, the seeds
    and the attacker (all compared on resume)."""

    dataset: str = "digits"
    model: str = "small-cnn"
    train_epochs: int = TRAIN_EPOCHS
    train_lr: float = TRAIN_LR
    seeds: tuple[int, ...] = (0,)
    batch_size: int = 64
    image_size: int | None = None
    train_subset: int | None = None
    test_subset: int | None = None
    val_subset: int | None = None
    forget: str | None = None
    forget_seed: int = 0
    split_seed: int = 0
    data_dir: str | None = None
    augment: bool = False
    mia_iterations: int = 1000
    mia_features: str = "logits"
    mia_attacker: str = "catboost"
    mia_folds: int = 5
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    normalize: str | None = None
    data_file: str | None = None          # a table's options (--dataset csv)
    target: str | None = None
    id_column: str | None = None
    group_column: str | None = None

    @classmethod
    def from_preset(cls, preset: Preset):
        """The configuration a preset describes: every field of the preset this class has."""
        own = {f.name for f in fields(cls)}
        return cls(**{f.name: getattr(preset, f.name) for f in fields(preset) if f.name in own})

    def validate_reference(self) -> None:
        dataset_info(self.dataset)
        self.model = canonical_model_name(self.model)
        self.seeds = tuple(int(s) for s in self.seeds)
        if not self.seeds:
            raise SftcError("no seeds given; pass --seeds 0,1,... (at least one)")
        if len(set(self.seeds)) != len(self.seeds):
            raise SftcError(f"--seeds repeats a seed: {list(self.seeds)}")
        for seed in self.seeds:
            check_seed(seed, "--seeds")
        check_seed(self.forget_seed, "--forget-seed")
        check_seed(self.split_seed, "--split-seed")
        for part in ("train", "test", "val"):
            size = getattr(self, f"{part}_subset")
            if size is not None and size < 2:
                raise SftcError(f"--{part}-subset must be at least 2 images, got {size}")
        if self.train_epochs < 1:
            raise SftcError(f"--train-epochs must be at least 1, got {self.train_epochs}")
        if self.batch_size < 1:
            raise SftcError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.mia_iterations < 1:
            raise SftcError(f"--mia-iterations must be at least 1, got {self.mia_iterations}")
        if self.mia_attacker not in ATTACKERS:
            raise SftcError(f"--mia-attacker must be one of {', '.join(ATTACKERS)}, "
                            f"got {self.mia_attacker!r}")
        if self.mean is not None or self.std is not None or self.normalize is not None:
            from ..data.images import normalization

            normalization(1 if self.mean is None or len(self.mean) == 1 else len(self.mean),
                          self.mean, self.std, self.normalize)   # checked before any work
            self.mean = tuple(self.mean) if self.mean is not None else None
            self.std = tuple(self.std) if self.std is not None else None
        if self.mia_features not in ("logits", "softmax"):
            raise SftcError(f"--mia-features must be logits or softmax, got {self.mia_features!r}")

    def reference_dict(self) -> dict:
        d = asdict(self)
        if d["mia_attacker"] == "catboost":  # the default: absent, so older outputs still resume
            del d["mia_attacker"]
        for key in ("mean", "std", "normalize"):   # the dataset's own: absent, as before
            if d[key] is None:
                del d[key]
            elif key != "normalize":
                d[key] = list(d[key])
        for name in ("test_subset", "val_subset", *TABLE_FIELDS):   # absent when unused
            if d[name] is None:
                del d[name]
        d["seeds"] = list(self.seeds)
        return d


@dataclass
class BenchmarkConfig(ReferenceConfig):
    """Everything that determines a benchmark's numbers (compared on resume)."""

    lrs: tuple[float, ...] = (1e-3,)
    max_epochs: int = 4
    methods: tuple[tuple[str, dict], ...] = field(default_factory=lambda: methods_for("small-cnn"))
    js: str = "textbook"
    #: Reference models of the per-example attack (RMIA) columns; 0: no attack columns.
    attack_references: int = 0
    #: The rule that keeps each method's setting: the paper's Eq. 5 + 6 + 7 ("paper") or the
    #: audit's evidence on a selection split ("evidence": oracle-free, sftc.bench.select_evidence)
    select: str = "paper"
    #: The evidence rule's accuracy budget (validation accuracy below the original's).
    max_accuracy_drop: float = 0.02
    #: The attack the columns and verdicts use (a registered one, e.g. a plugin's).
    attack: str = "rmia-offline"

    def validate(self) -> None:
        self.validate_reference()
        k = self.attack_references
        if isinstance(k, bool) or not isinstance(k, int) or k < 0 or 0 < k < 4:
            raise SftcError(f"--attack-references must be 0 (no attack columns) or 4 or more "
                            f"(models retrained without D_f; the never-seen level needs 4), "
                            f"got {k!r}")
        from ..metrics.attacks import attack_class

        cls = attack_class(self.attack)
        if cls.needs_members:
            raise SftcError(f"--attack {cls.name} reads reference models that trained on the "
                            "samples it scores; the attack columns' references never did: use "
                            "rmia-offline, lira-offline or another attack that reads them")
        self.attack = cls.name
        if self.select not in ("paper", "evidence"):
            raise SftcError(f"--select must be paper or evidence, got {self.select!r}")
        if self.select == "evidence" and not k:
            raise SftcError("--select evidence judges each setting with the audit's evidence: "
                            "give --attack-references 4 or more")
        if not (isinstance(self.max_accuracy_drop, (int, float)) and
                0.0 <= self.max_accuracy_drop < 1.0):
            raise SftcError(f"--max-accuracy-drop must lie in [0, 1), got "
                            f"{self.max_accuracy_drop!r}")
        self.lrs = tuple(float(v) for v in self.lrs)
        if not self.lrs:
            raise SftcError("the learning-rate grid is empty; pass --lrs with at least one value")
        bad = [v for v in self.lrs if not (v > 0 and math.isfinite(v))]
        if bad:
            raise SftcError(f"learning rates must be positive numbers, got {bad[0]!r} in --lrs")
        if len(set(self.lrs)) != len(self.lrs):
            raise SftcError(f"--lrs repeats a value: {list(self.lrs)}")
        if self.max_epochs < 1:
            raise SftcError(f"--max-epochs must be at least 1, got {self.max_epochs}")
        if self.js not in ("textbook", "paper"):
            raise SftcError(f"--js must be textbook or paper, got {self.js!r}")
        if not self.methods:
            raise SftcError("no methods given; pass --methods (see 'sftc methods')")
        methods = []
        for name, hparams in self.methods:
            cls = method_class(name)
            if cls.fresh_start:
                raise SftcError(f"{cls.name!r} starts from a fresh model: it is the RT reference "
                                "row of every benchmark; leave it out of --methods")
            create_method(cls.name, **hparams)          # rejects unknown or invalid hparams
            methods.append((cls.name, dict(hparams)))
        keys = [method_key(n, h) for n, h in methods]
        if len(set(keys)) != len(keys):
            raise SftcError(f"--methods lists a method twice: {', '.join(keys)}")
        self.methods = tuple(methods)

    def to_dict(self) -> dict:
        d = self.reference_dict()
        if not d["attack_references"]:    # absent when unused: older outputs still resume
            del d["attack_references"]
        if d["select"] == "paper" and d["max_accuracy_drop"] == 0.02:    # likewise
            del d["select"], d["max_accuracy_drop"]
        if d["attack"] == "rmia-offline":
            del d["attack"]
        d["lrs"] = list(self.lrs)
        d["methods"] = [{"name": n, "hparams": dict(h)} for n, h in self.methods]
        return d


@dataclass
class SweepConfig(ReferenceConfig):
    """Everything that determines a sweep's numbers (compared on resume): the shared reference
    settings plus the method, the swept parameter (``lr`` or any hyperparameter of the method),
    its values and the fixed ones. ``tau`` and ``c`` are SFTC's fixed values (the paper's
    Figure 5); another method's fixed hyperparameters are ``hparams``."""

    param: str = "lr"
    values: tuple[float, ...] = ()
    lr: float = TRAIN_LR
    tau: float = 1.0
    c: float = 0.0
    epochs: int = 2
    method: str = "sftc"
    hparams: dict = field(default_factory=dict)

    def validate(self) -> None:
        cls = method_class(self.method)
        self.method = cls.name
        if cls.fresh_start:
            raise SftcError(f"{cls.name!r} starts from a fresh model (the oracle, every sweep's "
                            "reference); sweep an unlearning method")
        if self.param != "lr" and self.param not in cls.hparams:
            allowed = ", ".join(cls.hparams) or "none"
            raise SftcError(f"unknown sweep parameter {self.param!r}: method {cls.name!r} has no "
                            f"such hyperparameter; sweep lr or one of: {allowed}")
        if cls.name != "sftc" and (self.tau, self.c) != (1.0, 0.0):
            raise SftcError(f"--tau and --c are SFTC's; fix {cls.name}'s hyperparameters with "
                            f"--method {cls.name}:KEY=VALUE")
        self.hparams = dict(self.hparams)
        if self.param in self.hparams:
            raise SftcError(f"{self.param} is the swept parameter; do not also fix it in "
                            f"--method {cls.name}:{self.param}=...")
        self.validate_reference()
        if not self.values:
            if self.param != "lr" and not (cls.name == "sftc" and self.param in DEFAULT_VALUES):
                raise SftcError(f"--values is required: {cls.name}'s {self.param} has no range "
                                "from the paper (e.g. --values 1,2,3)")
            self.values = DEFAULT_VALUES[self.param]
        self.values = tuple(float(v) for v in self.values)
        if len(set(self.values)) != len(self.values):
            raise SftcError(f"--values repeats a value: {list(self.values)}")
        if self.epochs < 1:
            raise SftcError(f"--epochs must be at least 1, got {self.epochs}")
        kind = cls.hparams[self.param].type if self.param != "lr" else float
        for value in self.values:
            if kind is int and not float(value).is_integer():
                raise SftcError(f"{cls.name}'s {self.param} is a whole number, got {value:g} in "
                                "--values")
            point = self.point(value)
            if not (point["lr"] > 0 and math.isfinite(point["lr"])):
                raise SftcError(f"learning rates must be positive numbers, got {point['lr']!r}")
            create_method(cls.name, **self.hparams_at(value))   # checks every value

    def fixed(self) -> dict:
        """The method's hyperparameters held fixed (SFTC: τ and c, as in Figure 5)."""
        base = {"tau": self.tau, "c": self.c} if self.method == "sftc" else {}
        return {**base, **self.hparams}

    def hparams_at(self, value: float) -> dict:
        """The method's hyperparameters at one value of the swept parameter."""
        values = self.fixed()
        if self.param != "lr":
            cls = method_class(self.method)
            values[self.param] = cls.hparams[self.param].type(value)
        return values

    def point(self, value: float) -> dict:
        """The learning rate and the method's hyperparameters at one value."""
        return {"lr": value if self.param == "lr" else self.lr, **self.hparams_at(value)}

    def to_dict(self) -> dict:
        d = self.reference_dict()
        d["values"] = list(self.values)
        if self.method == "sftc":      # the paper's sweep: as older sftc wrote it (resumable)
            del d["method"]
        else:
            del d["tau"], d["c"]
        if not self.hparams:
            del d["hparams"]
        return d


def make_config(cls, preset: str | None = None, *, dataset: str | None = None,
                model: str | None = None, **options):
    """The configuration of class ``cls`` for a preset and options; returns (config, preset).

    Start from the preset (for another ``model``, its variant for that architecture) or, without
    one, from ``dataset`` (default digits) and ``model`` (default: the dataset's) with the paper's
    methods for that model; then every option that is not None replaces the field of that name.
    The result is validated.
    """
    chosen = get_preset(preset) if preset else None
    if chosen is not None:
        if model:
            chosen = chosen.with_model(canonical_model_name(model))
        config = cls.from_preset(chosen)
    else:
        dataset_name = dataset or "digits"
        model_name = canonical_model_name(model or dataset_info(dataset_name).default_model)
        config = cls(dataset=dataset_name, model=model_name)
        if hasattr(config, "methods"):
            config.methods = methods_for(model_name)
    if dataset:
        config.dataset = dataset
    own = {f.name for f in fields(config)}
    for name, value in options.items():
        if name not in own:
            raise TypeError(f"{cls.__name__} has no field {name!r}")
        if value is not None:
            setattr(config, name, value)
    config.validate()
    return config, chosen


def method_key(name: str, hparams: dict) -> str:
    """A file-system-safe key: ``sftc``, ``cf-k_k-1``, ``sftc_c-0.5_tau-2``."""
    parts = [name.replace("+", "plus")]
    parts += [f"{k}-{v:g}" if isinstance(v, float) else f"{k}-{v}" for k, v in sorted(hparams.items())]
    return "_".join(parts)


def method_label(name: str, hparams: dict) -> str:
    """The Table-1 row label (``CF-5`` for cf-k with k = 5)."""
    return create_method(name, **hparams).label or name


def number_text(value: float) -> str:
    """A learning rate or swept value as paths and labels write it (``0.001``, ``5e-05``)."""
    return f"{value:g}"
