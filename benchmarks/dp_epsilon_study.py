"""The ε study the paper asked for (section 6; issue 29 item 6): unlearning originals trained
with differential privacy.

For each memorising preset (digits-memorising, diamonds-memorising) and each ε (no DP, 8, 4, 1):
train the original (DP-SGD with Opacus at that ε, ``sftc.dp``; the preset's recipe otherwise),
audit the original itself (``sftc audit``'s RMIA against reference models trained with the
same recipe, privacy included: is there anything to remove?), then unlearn the preset's forget
set with each of the paper's seven methods at its own defaults (one setting, not tuned) and
audit each. Writes ``results.json``, ``README.md`` (the tables) and ``epsilon.png`` (the
original's test accuracy and attack AUC on D_f against ε) into ``--out``.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dp_epsilon_study.py \\
        --out docs/results/dp-epsilon [--presets digits-memorising] [--epsilons none,8,4,1] \\
        [--references 8] [--train-epochs N]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import sftc
from sftc import api
from sftc.bench.config import BenchmarkConfig, make_config, method_label
from sftc.bench.presets import get_preset
from sftc.bench.split import make_split
from sftc.dp import MAX_GRAD_NORM, PrivacyRecipe, dp_name
from sftc.io import atomic_write_json, atomic_write_text
from sftc.recipes import TrainingRecipe


def original_for(split, preset, epochs: int, epsilon):
    privacy = PrivacyRecipe(epsilon) if epsilon else None
    result = sftc.train(split, preset.model, epochs=epochs, seed=0, device="cpu",
                        progress=False, privacy=privacy)
    recipe = TrainingRecipe(dp_name(preset.model) if epsilon else preset.model, epochs=epochs,
                            dp_epsilon=epsilon, max_grad_norm=MAX_GRAD_NORM if epsilon else None)
    return result, recipe


def audited(original, unlearned, split, recipe, references: int, cache) -> dict:
    res = sftc.audit(original, unlearned, split, references=references, recipe=recipe,
                     cache_dir=cache, paper_metrics=False, device="cpu", progress=False)
    figures = res.attacks[res.decisive]
    return {"verdict": res.verdict.text, "auc": figures["unlearned"]["auc"],
            "original_verdict": res.original.text, "original_auc": figures["original"]["auc"],
            "level": (res.verdict.to_dict().get("band") or {}),
            "resolution": res.verdict.resolution,
            "reference_seconds": res.references.get("train_seconds")}


def one_setting(preset, split, epochs: int, epsilon, references: int, cache) -> dict:
    t0 = time.perf_counter()
    result, recipe = original_for(split, preset, epochs, epsilon)
    acc = api.accuracies(api.subset_logits(result.model, split, "cpu", ("forget", "test")),
                          split)
    row = {"epsilon": epsilon, "spent": (result.config.get("dp") or {}).get("epsilon"),
           "noise_multiplier": (result.config.get("dp") or {}).get("noise_multiplier"),
           "acc_test": acc["acc_test"], "acc_forget": acc["acc_forget"],
           "train_seconds": result.seconds, "methods": {}}
    itself = audited(result.model, result.model, split, recipe, references, cache)
    row.update(original_verdict=itself["original_verdict"], original_auc=itself["original_auc"],
               level=itself["level"], reference_seconds=itself["reference_seconds"])
    for name, hparams in preset.methods:
        run = sftc.unlearn(result.model, split, name, seed=0, device="cpu", progress=False,
                           model_name=recipe.model, **hparams)
        found = audited(result.model, run.model, split, recipe, references, cache)
        row["methods"][method_label(name, hparams)] = {
            "verdict": found["verdict"], "auc": found["auc"], "seconds": run.seconds,
            "cost": run.seconds / result.seconds}
    row["wall_seconds"] = time.perf_counter() - t0
    print(json.dumps({k: v for k, v in row.items() if k != "methods"}), flush=True)
    return row


def markdown(results: dict, command: str) -> str:
    lines = ["# Unlearning originals trained with differential privacy (the ε study)", "",
             f"Command: `{command}`", ""]
    for preset, rows in results["presets"].items():
        lines += [f"## {preset}", "", "| ε asked | ε spent | noise | acc test | acc D_f | "
                  "attack AUC on D_f (original) | original's verdict |", "|---|---|---|---|---|"
                  "---|---|"]
        for r in rows:
            lines.append(f"| {r['epsilon'] or 'no DP'} | {_f(r['spent'])} | "
                         f"{_f(r['noise_multiplier'])} | {r['acc_test']:.3f} | "
                         f"{r['acc_forget']:.3f} | {r['original_auc']:.3f} | "
                         f"{r['original_verdict']} |")
        methods = list(rows[0]["methods"])
        lines += ["", "Each method's verdict (AUC; cost = unlearning seconds / the original's "
                  "training seconds):", "", "| method | " + " | ".join(
                      str(r["epsilon"] or "no DP") for r in rows) + " |",
                  "|---|" + "---|" * len(rows)]
        for m in methods:
            cells = [f"{r['methods'][m]['verdict']} ({r['methods'][m]['auc']:.2f}; "
                     f"{r['methods'][m]['cost']:.2f})" for r in rows]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines) + "\n"


def _f(v):
    return "—" if v is None else f"{v:.3f}"


def figure(results: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for preset, rows in results["presets"].items():
        xs = [str(r["epsilon"] or "no DP") for r in rows]
        axes[0].plot(xs, [r["original_auc"] for r in rows], marker="o", label=preset)
        axes[1].plot(xs, [r["acc_test"] for r in rows], marker="o", label=preset)
    axes[0].set_title("attack AUC on D_f (original)")
    axes[1].set_title("test accuracy (original)")
    for ax in axes:
        ax.set_xlabel("ε")
        ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def merge(folders: list[Path], out: Path) -> None:
    """One results.json, README.md and epsilon.png of several runs (each keeps its command)."""
    runs = [json.loads((f / "results.json").read_text()) for f in folders]
    results = {"presets": {k: v for r in runs for k, v in r["presets"].items()},
               "runs": [{"command": r["command"], "wall_seconds": r["wall_seconds"],
                         "presets": list(r["presets"])} for r in runs]}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "results.json", results)
    text = markdown(results, "; ".join(r["command"] for r in runs))
    atomic_write_text(out / "tables.md", text)
    figure(results, out / "epsilon.png")


def main() -> None:
    import shlex
    import sys

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--presets", default="digits-memorising,diamonds-memorising")
    p.add_argument("--epsilons", default="none,8,4,1")
    p.add_argument("--references", type=int, default=8)
    p.add_argument("--train-epochs", type=int, default=None,
                   help="override every preset's training epochs (default: the preset's)")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--merge", default=None,
                   help="DIR1,DIR2: write the tables and the figure of earlier runs' "
                        "results.json together into --out (nothing is trained)")
    args = p.parse_args()
    out = Path(args.out)
    if args.merge:
        return merge([Path(d) for d in args.merge.split(",")], out)
    cache = Path(args.cache_dir) if args.cache_dir else None     # None: sftc's model cache
    epsilons = [None if e.strip() == "none" else float(e) for e in args.epsilons.split(",")]
    results = {"command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
               "presets": {}, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    t0 = time.perf_counter()
    for name in args.presets.split(","):
        preset = get_preset(name)
        config, _ = make_config(BenchmarkConfig, name)
        split = make_split(config)
        epochs = args.train_epochs or preset.train_epochs
        results["presets"][name] = [one_setting(preset, split, epochs, e, args.references,
                                                cache) for e in epsilons]
        results.setdefault("train_epochs", {})[name] = epochs
    results["wall_seconds"] = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "results.json", results)
    atomic_write_text(out / "README.md", markdown(results, results["command"]))
    figure(results, out / "epsilon.png")


if __name__ == "__main__":
    main()
