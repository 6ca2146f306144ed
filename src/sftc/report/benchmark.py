"""Everything a benchmark writes: Table 1's files, selection.csv, convergence.png, report.md."""
from __future__ import annotations

import time
from pathlib import Path

from ..io import atomic_write_json, atomic_write_text
from ..metrics.mia import ATTACKER_NAMES
from .plots import attack_figure, convergence_figure
from .table1 import selection_csv, table1_files
from .tables import fmt


def write_files(out: Path, files: dict[str, str | dict]) -> None:
    """Write ``{name: text or JSON object}`` into ``out`` (atomically, one file at a time)."""
    for name, content in files.items():
        if isinstance(content, dict):
            atomic_write_json(out / name, content)
        else:
            atomic_write_text(out / name, content)


def write_benchmark(out: Path, table: dict, config: dict, manifest: dict, split,
                    preset=None) -> None:
    """table1.{md,csv,json,tex}, selection.csv, convergence.png, attack.png (with the attack's
    columns) and report.md in ``out``."""
    rows = table["rows"]
    files = table1_files(rows, config)
    write_files(out, files)
    atomic_write_text(out / "selection.csv", selection_csv(rows, table["selection_grid"]))
    convergence_png(out / "convergence.png", rows, table["results"], config)
    if any(r.get("rmia_auc") is not None for r in rows):
        attack_figure(rows, out / "attack.png", config.get("attack_references"),
                      title=f"Per-example attack (RMIA, {config.get('attack_references')} "
                            f"references) on every row of {config['dataset']}: mean ± std over "
                            f"{len(config['seeds'])} seed(s); colour: the most frequent verdict")
    atomic_write_text(out / "report.md", report_markdown(config, manifest, split, files["table1.md"],
                                                         preset))


def mean_history(results_by_seed: list[dict]) -> list[dict]:
    """Per-epoch accuracies averaged over the seeds' runs (epochs every seed reached)."""
    by_epoch: dict[int, list[dict]] = {}
    for result in results_by_seed:
        for r in result["rows"]:
            by_epoch.setdefault(r["epoch"], []).append(r)
    out = []
    for epoch in sorted(by_epoch):
        group = by_epoch[epoch]
        if len(group) != len(results_by_seed):
            continue
        row = {"epoch": epoch}
        for key in ("acc_retain", "acc_forget", "acc_test"):
            vals = [g[key] for g in group if isinstance(g.get(key), (int, float))]
            if len(vals) == len(group):
                row[key] = sum(vals) / len(vals)
        out.append(row)
    return out


def convergence_png(path: Path, rows: list[dict], results: dict, config: dict) -> None:
    """Figure 4: per method at its kept learning rate, the accuracies per epoch (mean over
    seeds), the oracle's dashed."""
    seeds = config["seeds"]
    panels = {}
    for row in rows:
        if row["label"] in ("ORI", "RT") or row.get("failed"):
            continue
        runs = [results[row["key"]][(row["lr"], s)] for s in seeds]
        panels[f"{row['label']} (lr {row['lr']:g}, kept epoch {row['epoch']})"] = mean_history(runs)
    oracle = {}
    rt = next((r for r in rows if r["label"] == "RT"), None)
    if rt:
        oracle = {k: rt[k] for k in ("acc_retain", "acc_test", "acc_forget") if k in rt}
    if panels:
        convergence_figure(panels, oracle, path,
                           title=f"Convergence on {config['dataset']} ({config['model']}, mean over "
                                 f"{len(seeds)} seed(s); dashed: oracle)")


def report_markdown(c: dict, manifest: dict, split, table_md: str, preset=None) -> str:
    """report.md: the command and sessions, machine and versions, configuration, protocol
    notes, the tables and the figure."""
    sessions = manifest.get("sessions", [])
    last = sessions[-1] if sessions else {}
    wall_total = sum(s.get("wall_seconds") or 0.0 for s in sessions)
    sizes = split.sizes()
    attacker = ATTACKER_NAMES[c.get("mia_attacker", "catboost")]
    lines = ["# Benchmark report", "",
             f"Generated {time.strftime('%Y-%m-%d %H:%M:%S %Z')} by `sftc benchmark`.", "",
             "## Command", "", "```", last.get("command") or "(Python API)", "```", ""]
    if len(sessions) > 1:
        lines += [f"The benchmark ran in {len(sessions)} sessions (it was resumed); commands:", ""]
        lines += [f"- `{s.get('command')}` ({fmt(s.get('wall_seconds'), '{:.0f}')} s)"
                  for s in sessions]
        lines.append("")
    lines += ["## Machine and versions", "",
              f"- device: {last.get('device')}",
              *(f"- {k}: {v}" for k, v in (last.get("machine") or {}).items()),
              "- versions: " + ", ".join(f"{k} {v}" for k, v in (last.get("versions") or {}).items()),
              f"- wall time: {fmt(last.get('wall_seconds'), '{:.0f}')} s this session, "
              f"{wall_total:.0f} s over all sessions "
              "(reference models loaded from the cache cost no time here)", "",
              "## Configuration", "",
              f"- dataset: {c['dataset']} (sizes: " + ", ".join(f"{k} {v}" for k, v in sizes.items())
              + f"; forget `{split.forget_spec}`, drawn with seed {c['forget_seed']}, the same for "
              "every seed" + (f"; training set: a stratified subset of {len(split.train)} images"
                              if c["train_subset"] else "")
              + (f"; test split: a stratified subset of {c['test_subset']} images"
                 if c.get("test_subset") else "")
              + (f"; validation split: a stratified subset of {c['val_subset']} images"
                 if c.get("val_subset") else "") + "); image size: "
              + str(split.data.input_size),
              f"- model: {c['model']}; original and oracle: {c['train_epochs']} epochs, Adam lr "
              f"{c['train_lr']:g}, cosine annealing, batch {c['batch_size']}"
              + (", augmentation" if c["augment"] else ""),
              f"- seeds: {', '.join(map(str, c['seeds']))}",
              f"- learning-rate grid: {', '.join(f'{v:g}' for v in c['lrs'])}; unlearning epochs "
              f"1-{c['max_epochs']} (constant learning rate, Adam, batch {c['batch_size']})",
              "- methods: " + ", ".join(m["name"] + (
                  f" ({', '.join(f'{k}={v}' for k, v in m['hparams'].items())})"
                  if m["hparams"] else "") for m in c["methods"]),
              f"- MIA: {attacker}, {c['mia_iterations']} iterations, {c['mia_folds']}-fold CV, "
              f"features: {c['mia_features']}; JS column: {c['js']}",
              ("- per-example attack: `sftc audit`'s evidence (RMIA offline) with "
               f"{c['attack_references']} reference models retrained on D_r with the recipe of M "
               "and M_R (seeds from pool seed 0), shared by every seed and row and cached with "
               "`sftc audit`'s references; D_f matched with test samples of its class and "
               f"difficulty; population: the validation split ({sizes.get('val')} images)"
               if c.get("attack_references")
               else "- per-example attack: none (attack_references 0)"), ""]
    if preset is not None:
        lines += [f"Preset `{preset.name}`: {preset.description}", ""]
    lines += ["## Protocol", "",
              "Section 5.5 of the paper: for each seed the original model M and the oracle M_R "
              "(retrained from scratch on the retain set); for each method and learning rate one "
              f"run of {c['max_epochs']} epochs at a constant learning rate, evaluated after every "
              "epoch; per method the (learning rate, epoch) with the lowest Eq. 5 + 6 + 7 averaged "
              "over seeds is kept (`selection.csv` has every candidate's score); JS and MIA are "
              "computed at the kept setting only. As in the paper, the setting is chosen on the "
              "same test set the table reports (no separate validation step). The retain accuracy "
              "(convergence figure) is measured on the MIA's member sample, a class-balanced random "
              "sample of the retain set as large as the test set.", "",
              "## Results", "", table_md.split("\n", 1)[1].lstrip(), "",
              "## Convergence (Figure 4)", "",
              "![convergence](convergence.png)", "",
              "Each panel: retain (blue), test (green) and forget (red) accuracy per epoch at the "
              "method's kept learning rate, epoch 0 being the original model, mean over seeds; "
              "dashed: the oracle's accuracies.", ""]
    if c.get("attack_references"):
        lines += ["## The per-example attack", "", "![attack](attack.png)", "",
                  "Per row at its kept setting: RMIA's AUC of D_f against never-seen D_t (bars grow "
                  "from 0.5, a model that never saw D_f) and its TPR at 1 % FPR (chance 0.01), "
                  "mean ± standard deviation over seeds, coloured by the audit verdict most seeds "
                  "gave.", ""]
    return "\n".join(lines) + "\n"
