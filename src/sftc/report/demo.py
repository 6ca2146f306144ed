"""The demo's report.md: its setting, the table of every method, the figure and the metrics."""
from __future__ import annotations

from .table1 import evidence_table, gap_text, marking_rule_text
from .text import metric_help, table1_text

#: Row order of Table 1 after ORI and RT (section 5.5), NegGrad beside NegGrad+.
PAPER_METHOD_ORDER = ("ft", "neggrad+", "neggrad", "cf-k", "eu-k", "scrub", "bad-teaching", "sftc")


def demo_markdown(rows: list[dict], split, *, forget: str, model: str, epochs: int,
                  unlearn_epochs: int, lr: float, out, record: dict) -> str:
    attack = any(r.get("rmia_auc") is not None for r in rows)
    refs = next((r.get("rmia_references") for r in rows if r.get("rmia_references")), None)
    lines = [
        "# sftc demo: unlearning on digits", "",
        f"Forget set `{forget}`: {len(split.forget)} of {len(split.train)} training samples "
        f"(class histogram {split.forget_summary()['class_histogram']}); {len(split.test)} test "
        f"images. Model `{model}`, original and oracle trained {epochs} epochs (Adam, lr 1e-3, "
        f"cosine, batch 64, no augmentation), so the original memorises its training data; "
        f"every method unlearns for {unlearn_epochs} epochs at lr {lr:g} (Adam, batch 64). "
        "No learning-rate search here: `sftc benchmark --preset digits-memorising` runs the "
        "paper's protocol on the same data.", "",
        gap_text(rows, {"attack_references": refs}), "",
        table1_text(rows, style="markdown"), "",
        marking_rule_text() + " Seconds: unlearning wall time; the oracle's row shows its "
        "training time.", ""]
    if attack:
        lines += ["Audit verdict (`sftc audit`'s rule: RMIA offline against models retrained "
                  "without D_f, D_f matched with never-seen samples of its class and difficulty, "
                  "against the band within which 90 % of retrained models land, with a "
                  "resolution of at least 50 % of the original's excess): "
                  + "; ".join(f"{r['label']} {r.get('rmia_verdict')}" for r in rows) + ".", "",
                  evidence_table(rows), "", "![attack](attack.png)", ""]
    lines += ["![convergence](convergence.png)", "", "## Metrics", ""]
    lines += [f"- `{key}`: {text}" for key, text in metric_help().items()]
    lines += ["", "## Reproduce", "", "```", "sftc demo --out " + str(out) + " --overwrite",
              "```", "", f"sftc {record['versions']['sftc']}, torch {record['versions']['torch']}, "
              f"{record['machine']['platform']}."]
    return "\n".join(lines) + "\n"


def write_demo(tmp, result, config, recorded: dict) -> list[str]:
    """Write the demo's files into ``tmp`` (run.json, report.md, the figures, the models); returns
    the names written, for the last line the command prints."""
    from ..checkpoints import save_state_dict
    from ..io import atomic_write_json, atomic_write_text
    from ..records import run_record
    from .plots import attack_figure, convergence_figure, search_figure

    for name, model in result.models.items():
        save_state_dict(model, tmp / "models" / f"{name}.pt")
    save_state_dict(result.original.model, tmp / "models" / "original.pt")
    save_state_dict(result.oracle.model, tmp / "models" / "retrained.pt")
    written = ["run.json", "report.md", "convergence.png"]
    convergence_figure({label: run["history"] for label, run in result.runs.items()},
                       result.oracle_accuracies, tmp / "convergence.png",
                       title=f"Convergence on digits ({config.model}); dashed: the oracle")
    if config.references:
        attack_figure(result.rows, tmp / "attack.png", references=config.references)
        written.append("attack.png")
    if result.until is not None:
        search_figure(result.until.trace, result.until.settings["max_accuracy_drop"],
                      tmp / "trace.png", title="SFTC until forgotten on the demo's data",
                      chosen=result.until.chosen)
        written.append("trace.png")
    if "sftc" in result.models:
        save_state_dict(result.models["sftc"], tmp / "model.pt")
        written.append("model.pt (SFTC)")
    record = run_record("demo", {**recorded, "methods": list(config.methods)}, result.split,
                        result.original.history, None, rows=result.rows, runs=result.runs,
                        original={"seconds": result.original.seconds,
                                  "history": result.original.history.rows},
                        retrained={"seconds": result.oracle.seconds,
                                   "history": result.oracle.history.rows},
                        until=result.until.to_dict() if result.until is not None else None,
                        wall_seconds=result.wall_seconds)
    sftc_row = next((r for r in result.rows if r.get("method") == "sftc"), None)
    if sftc_row is not None:
        record["metrics"] = {k: v for k, v in sftc_row.items() if k not in ("label", "method")}
    atomic_write_json(tmp / "run.json", record)
    atomic_write_text(tmp / "report.md", demo_markdown(
        result.rows, result.split, forget=config.forget, model=config.model,
        epochs=config.epochs, unlearn_epochs=config.unlearn_epochs, lr=config.lr,
        out=recorded.get("out"), record=record))
    return written + ["models/"]
