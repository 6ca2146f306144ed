"""The demo's report.md: its setting, the table of every method, the figure and the metrics."""
from __future__ import annotations

from .text import METRIC_HELP, table1_text

#: Row order of Table 1 after ORI and RT (section 5.5), NegGrad beside NegGrad+.
PAPER_METHOD_ORDER = ("ft", "neggrad+", "neggrad", "cf-k", "eu-k", "scrub", "bad-teaching", "sftc")


def demo_markdown(rows: list[dict], split, *, forget: str, model: str, epochs: int,
                  unlearn_epochs: int, lr: float, out, record: dict) -> str:
    lines = [
        "# sftc demo: unlearning on digits", "",
        f"Forget set `{forget}`: {len(split.forget)} of {len(split.train)} training samples "
        f"(class histogram {split.forget_summary()['class_histogram']}). Model `{model}`, "
        f"original and oracle trained {epochs} epochs (Adam, lr 1e-3, cosine, batch 64); "
        f"every method unlearns for {unlearn_epochs} epochs at lr {lr:g} (Adam, batch 64). "
        "No learning-rate search here: `sftc benchmark --preset digits` runs the paper's protocol.",
        "", table1_text(rows, style="markdown"), "",
        "Bold: best, underlined: second best among the unlearning methods (ORI and RT are "
        "references). Seconds: unlearning wall time; the oracle's row shows its training time.", "",
        "![convergence](convergence.png)", "", "## Metrics", ""]
    lines += [f"- `{key}`: {text}" for key, text in METRIC_HELP.items()]
    lines += ["", "## Reproduce", "", "```", "sftc demo --out " + str(out) + " --overwrite",
              "```", "", f"sftc {record['versions']['sftc']}, torch {record['versions']['torch']}, "
              f"{record['machine']['platform']}."]
    return "\n".join(lines) + "\n"
