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
                  "a 90 % interval against the never-seen level ± a fifth of the original's "
                  "shown excess): "
                  + "; ".join(f"{r['label']} {r.get('rmia_verdict')}" for r in rows) + ".", "",
                  evidence_table(rows), "", "![attack](attack.png)", ""]
    lines += ["![convergence](convergence.png)", "", "## Metrics", ""]
    lines += [f"- `{key}`: {text}" for key, text in metric_help().items()]
    lines += ["", "## Reproduce", "", "```", "sftc demo --out " + str(out) + " --overwrite",
              "```", "", f"sftc {record['versions']['sftc']}, torch {record['versions']['torch']}, "
              f"{record['machine']['platform']}."]
    return "\n".join(lines) + "\n"
