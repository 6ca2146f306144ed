"""The forgetting score's report.md and summary, from its record (``forgetting.json``)."""
from __future__ import annotations


def forgetting_summary(record: dict, out=None) -> list[str]:
    s = record["settings"]
    acc = record["mean_accuracies"]
    lines = [f"forgetting score (NeurIPS 2023 challenge) of {s['method']}: "
             f"{record['final_score']:.4f} = forgetting quality {record['forgetting_quality']:.4f}"
             f" × retain accuracy {acc['unlearned']['retain']:.4f}/{acc['retrained']['retain']:.4f}"
             f" × test accuracy {acc['unlearned']['test']:.4f}/{acc['retrained']['test']:.4f}",
             f"N = {s['n_models']} unlearned models ({s['originals']} originals) against "
             f"{s['n_models']} retrained; per-example ε median {record['epsilon_median']:.2f}"]
    if record.get("null_quality") is not None:
        lines.append(f"a perfect unlearner (retraining itself) would get a forgetting quality of "
                     f"about {record['null_quality']:.3f} at N = {s['n_models']}")
    u = record["u_lira"]
    lines.append(f"U-LiRA (leave-one-out): AUC {u['auc']:.3f}, accuracy {u['accuracy']:.3f} "
                 "(0.5: unlearned models look retrained)")
    audit = record.get("audit")
    if audit:
        lines.append("sftc audit's verdict on the unlearned models (the retrained ones as "
                     "references): " + ", ".join(f"{v} {n}/{s['n_models']}"
                                                 for v, n in audit["counts"].items()))
    if out is not None:
        lines.append(f"wrote {out}/forgetting.json and report.md "
                     f"({record['timings']['total_seconds']:.0f} s)")
    return lines


def forgetting_markdown(record: dict) -> str:
    s = record["settings"]
    acc = record["mean_accuracies"]
    forget = s["forget"]
    medians = {g: v["mean_over_examples"] for g, v in record["median_confidence"].items()}
    lines = [f"# Forgetting score of `{s['method']}`: {record['final_score']:.4f}", "",
             "The NeurIPS 2023 Machine Unlearning challenge's score (google-deepmind/"
             "unlearning_evaluation): for each forget example, the ε of the best threshold attack "
             "telling the method's N unlearned models from N retrained ones, bucketed (1, ½, ¼, … "
             "points per bucket of width 0.5 up to ceil(ln(N − 1))), averaged, and scaled by the "
             "accuracy ratios.", "",
             "| figure | value |", "|---|---|",
             f"| final score | {record['final_score']:.4f} |",
             f"| forgetting quality | {record['forgetting_quality']:.4f} |"]
    if record.get("null_quality") is not None:
        lines.append(f"| forgetting quality of a perfect unlearner at this N (simulated) | "
                     f"{record['null_quality']:.4f} |")
    lines += [f"| per-example ε: mean / median | {record['epsilon_mean']:.3f} / "
              f"{record['epsilon_median']:.3f} |",
              f"| retain accuracy: unlearned / retrained | {acc['unlearned']['retain']:.4f} / "
              f"{acc['retrained']['retain']:.4f} |",
              f"| test accuracy: unlearned / retrained | {acc['unlearned']['test']:.4f} / "
              f"{acc['retrained']['test']:.4f} |",
              f"| forget accuracy: unlearned / retrained | {acc['unlearned']['forget']:.4f} / "
              f"{acc['retrained']['forget']:.4f} |",
              f"| logit-scaled confidence on D_f (per-example median, mean over examples): "
              f"unlearned / retrained | {medians['unlearned']:.2f} / {medians['retrained']:.2f} |",
              f"| U-LiRA AUC / accuracy (leave-one-out, 0.5 = like retraining) | "
              f"{record['u_lira']['auc']:.3f} / {record['u_lira']['accuracy']:.3f} |"]
    audit = record.get("audit")
    if audit:
        lines.append(f"| `sftc audit`'s verdict per unlearned model ({audit['attack']}, the "
                     f"{s['n_models']} retrained models as references, never-seen level "
                     f"{audit['never_seen']['level']:.3f}) | "
                     + ", ".join(f"{v} {n}/{s['n_models']}" for v, n in audit["counts"].items())
                     + " |")
    lines += ["",
              f"Setting: {s['n_models']} unlearned models from {s['originals']} originals "
              f"(`{s['model']}`, {s['train_epochs']} epochs at lr {s['train_lr']:g}, batch "
              f"{s['batch_size']}), method `{s['method']}` {s['hparams'] or ''} "
              f"(epochs {s['unlearn_epochs'] or 'default'}, lr {s['unlearn_lr'] or 'default'}), "
              f"{s['n_models']} oracles retrained on D_r; model k uses seed {s['seed']} + k. "
              f"Forget set `{forget['spec']}`: {forget['size']} samples, SHA-256 "
              f"`{forget['sha256']}`.", "",
              f"Time: {record['timings']['total_seconds']:.0f} s "
              f"({record['timings']['models_trained_now']} models trained now, the rest from the "
              "cache)."]
    return "\n".join(lines) + "\n"
