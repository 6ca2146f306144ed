"""The audit's report.md and its short summary, from the audit record (``audit.json``)."""
from __future__ import annotations

from .tables import fmt
from .text import metric_help

ROLE_NAMES = {"original": "original M", "unlearned": "unlearned M_u", "oracle": "oracle M_R"}
PAPER_KEYS = ("acc_retain", "acc_forget", "acc_val", "acc_test", "acc_err_retrain", "acc_dis",
              "acc_err_original", "js", "js_paper", "mia", "mia_attacker_acc")
ACCURACY_HELP = {
    "acc_retain": "accuracy of M_u on the retain set D_r",
    "acc_forget": "accuracy of M_u on the forget set D_f",
    "acc_val": "accuracy of M_u on the validation split",
    "acc_test": "accuracy of M_u on the test split D_t",
}
RULE = (
    "The deciding attack scores every forget sample and every never-seen test sample; each forget "
    "sample is compared only with test samples of its class and of similar difficulty (how the "
    "reference models, which never saw either, treat it). The statistic is that matched AUC. The "
    "K reference models are retrained without D_f: each in turn, scored against the others on "
    "the same samples, gives the AUC a model that never saw D_f reaches on this D_f; their mean "
    "is the never-seen level L and their spread s holds both the examples' noise and how models "
    "stray from one another. A fresh retrain lands within L ± t_{K−1}(1 − α) · s √(1 + 1/K) (the "
    "retrain band) with probability 1 − 2α, and beyond the refute line L ± t_{K−1}(1 − α/2) · "
    "s √(1 + 1/K) with probability α. `not-forgotten`: the model lies beyond the refute line "
    "(remembered above, over-forgotten below). `nothing-detectable`: the original itself lies "
    "within it, so the attack cannot tell it from retrained models on this D_f. `forgotten`: the "
    "model lies inside the band and the original far enough outside it that a model keeping more "
    "than (1 − resolution) of the original's excess would be certified at most 10 % of the time, "
    "with the resolution at least the asked share (default 50 %). `not-proven`: otherwise; the "
    "report says what would decide it. For a class-level request (D_f holds every training "
    "sample of a class) the class test decides: the model's accuracy on never-seen samples of "
    "that class must be shown below a fifth of the original's; membership can only veto it "
    "(`not-forgotten`).")


def _p(value) -> str:
    return "—" if value is None else f"{value:.2g}"


def verdict_text(record: dict) -> str:
    direction = f" ({record['direction']})" if record.get("direction") else ""
    return f"{record['verdict']}{direction}"


def interval_text(decision: dict) -> str:
    """The model's AUC against the retrain band, and for ``forgotten`` its resolution."""
    i, band = decision["interval"], decision.get("band")
    if band is None:     # a record of the old margin rule
        return (f"AUC {i['estimate']:.3f} [{i['low']:.3f}, {i['high']:.3f}] against the "
                f"never-seen level {i['level']:.3f} ± margin {decision['margin']['delta']:.3f}")
    text = (f"AUC {i['estimate']:.3f} against the retrain band {band['level']:.3f} ± "
            f"{band['certify']:.3f} (refute beyond ± {band['refute']:.3f})")
    power = decision.get("power") or {}
    if decision["verdict"] == "forgotten" and power.get("resolution") is not None:
        text += f"; resolution {power['resolution']:.0%} of the original's excess"
    return text


def power_text(decision: dict) -> str:
    """What the attack's power is, from the original's figures."""
    power = decision.get("power")
    if not power:
        return "power not recorded"
    excess = power["original_excess"]
    if not power["shown"]:
        return (f"the original's excess {excess:+.3f} is within the refute line: nothing "
                "detectable to remove at this size")
    if power["resolution"] is None or power["resolution"] <= 0:
        return f"the original's excess {excess:.3f} gives no resolution"
    asked = (f"{power['required']:.0%}" if power["rule"] == "share"
             else f"undetected excess ≤ {power['required']:.3f}")
    return (f"the original's excess {excess:.3f} gives a resolution of "
            f"{power['resolution']:.0%} (asked {asked}): a model keeping more than "
            f"{1 - power['resolution']:.0%} of it is certified at most 10% of the time")


def needed_text(decision: dict) -> str | None:
    """What a not-proven verdict would need, in words."""
    if decision["verdict"] != "not-proven":
        return None
    needed = decision.get("needed") or {}
    return needed.get("why") or "retrain from scratch (--method retrain), the yardstick itself"


def cost_text(cost: dict | None) -> str | None:
    """The audit's whole cost against one retraining, in words."""
    if not cost or not cost.get("retrainings"):
        return None
    return (f"{cost['total_seconds']:.1f} s in all, references included = "
            f"{cost['retrainings']:.1f} retrainings (one retraining ≈ "
            f"{cost['one_retraining_seconds']:.1f} s, the references' median; "
            f"{cost['references_trained_now']} reference(s) trained now)")


def audit_summary(record: dict, out=None) -> list[str]:
    """A few readable lines for stdout, verdict first."""
    refs, removed, comp = record["references"], record["removed"], record["comparison"]
    decision = record["decision"]
    lines = [f"verdict: {verdict_text(record)} — {interval_text(decision)}",
             f"removed: {removed['count']} samples of {record['data']['dataset']} "
             f"({removed['spec']}), SHA-256 {removed['sha256'][:16]}…"]
    needed = needed_text(decision)
    if needed:
        lines.append(f"not proven: {needed}")
    original = record["original_as_unlearned"]
    lines.append(f"original, audited the same way: {verdict_text(original)} — "
                 f"{interval_text(original)} (the attack's power: {power_text(decision)})")
    if record.get("oracle_as_unlearned"):
        oracle = record["oracle_as_unlearned"]
        needed = needed_text(oracle)
        lines.append(f"oracle, audited the same way: {verdict_text(oracle)} — "
                     f"{interval_text(oracle)}" + (f"; not proven: {needed}" if needed else ""))
    lines.append(f"compared: {comp['matched_forget']} of {removed['count']} forget samples with "
                 f"{comp['comparison_samples']} never-seen test samples of their class and "
                 f"difficulty ({comp['unmatched_forget']} without a match); "
                 f"{record['decisive_attack']}, α = {record['evidence']['alpha']:g}")
    if comp["classes"]["removed"]:
        lines.append(f"class-level request: D_f holds every training sample of class(es) "
                     f"{comp['classes']['removed']}; judged also on never-seen samples of them")
    if comp.get("reference_cost"):
        lines.append(f"references: {comp['reference_cost']}")
    lines.append(f"references: {refs['count']} models retrained without D_f "
                 f"({refs['trained_now']} trained now, {refs['from_cache']} from the cache), "
                 f"recipe from {refs['recipe_source']}")
    metrics = record.get("paper_metrics")
    if metrics:
        parts = [f"{k} {metrics[k]:.4f}" for k in ("acc_forget", "acc_test", "acc_dis", "js",
                                                    "mia", "mia_attacker_acc") if k in metrics]
        lines.append("paper's metrics: " + ", ".join(parts))
    printed = set((record.get("lineage") or {}).get("notes", []))  # said at the start already
    for note in record.get("notes", []):
        if note not in printed:
            lines.append(f"note: {note}")
    cost = cost_text(record.get("cost"))
    if cost:
        lines.append(f"cost: {cost}")
    if out is not None:
        lines.append(f"wrote {out}/audit.json and report.md "
                     f"({record['timings']['total_seconds']:.0f} s)")
    return lines


def _attack_table(record: dict) -> list[str]:
    rates = record["evidence"]["fprs"]
    lines = ["| attack | model | matched AUC | interval | never-seen level | AUC vs all D_t | "
             + " | ".join(f"TPR@{r * 100:g}%" for r in rates) + " | p (D_f higher) |",
             "|---|---|---|---|---|---|" + "---|" * len(rates) + "---|"]
    for attack, roles in record["attacks"].items():
        for role, fig in roles.items():
            i, u = fig["interval"], fig["unmatched"]
            mark = " **(decides)**" if attack == record["decisive_attack"] and \
                role == "unlearned" else ""
            tprs = " | ".join("n/a" if u["tpr_at_fpr"].get(f"{r:g}") is None else
                              f"{u['tpr_at_fpr'][f'{r:g}']:.3f}" for r in rates)
            lines.append(f"| {attack}{mark} | {ROLE_NAMES[role]} | {fig['auc']:.3f} | "
                         f"[{i['low']:.3f}, {i['high']:.3f}] | {i['level']:.3f} | "
                         f"{u['auc']:.3f} | {tprs} | {_p(u['p_greater'])} |")
    return lines


def audit_markdown(record: dict) -> str:
    """report.md: the verdict against the retrain band, what was removed, the models, every
    attack, the paper's metrics, the references and the rule."""
    data, removed, refs, comp = (record["data"], record["removed"], record["references"],
                                 record["comparison"])
    decision = record["decision"]
    lines = [f"# sftc audit: {verdict_text(record)}", "",
             f"**Verdict: `{record['verdict']}`**"
             + (f" ({record['direction']})" if record.get("direction") else "")
             + f". {record['reason'][0].upper()}{record['reason'][1:]}.", "",
             f"- against the retrain band: {interval_text(decision)}; {power_text(decision)}"]
    needed = needed_text(decision)
    if needed:
        lines.append(f"- not proven: {needed}")
    lines += [f"- the original, audited the same way (the attack's power): "
              f"`{verdict_text(record['original_as_unlearned'])}`, "
              f"{interval_text(record['original_as_unlearned'])}"]
    if record.get("oracle_as_unlearned"):
        oracle = record["oracle_as_unlearned"]
        needed = needed_text(oracle)
        lines.append(f"- the oracle, audited the same way: `{verdict_text(oracle)}`, "
                     f"{interval_text(oracle)}" + (f"; not proven: {needed}" if needed else ""))
    classes = decision.get("class_test")
    if classes:
        lines.append(f"- class test: {classes['verdict']}: {classes['reason']}; mean probability "
                     f"of the true class {classes['confidence']:.3f} (original "
                     f"{classes['original_confidence']:.3f})")
    lines += ["", "## What was removed", "",
              f"- {removed['count']} of {data['sizes']['train']} training samples of "
              f"`{data['dataset']}`, forget set `{removed['spec']}`",
              f"- SHA-256 of their positions in the training set: `{removed['sha256']}`",
              f"- per class: {removed['class_histogram']}"]
    if comp["classes"]["removed"] or comp["classes"]["mostly"]:
        lines.append(f"- class-level: all of class(es) {comp['classes']['removed']}, most of "
                     f"{comp['classes']['mostly']}")
    listed = removed.get("names") or removed["positions"]
    what = "image paths" if removed.get("names") else "positions in the training set"
    head = ", ".join(str(v) for v in listed[:20]) + (" …" if len(listed) > 20 else "")
    lines += [f"- {what}: {head} (all {len(listed)} in audit.json)", "",
              "## Models audited", "", "| model | checkpoint | SHA-256 of the file | "
              "SHA-256 of the weights |", "|---|---|---|---|"]
    for role, info in record["models"].items():
        lines.append(f"| {ROLE_NAMES[role]} | {info['checkpoint'] or '(in memory)'} | "
                     f"`{info['sha256'] or '—'}` | `{info['weights_sha256']}` |")
    lines += ["", "## Membership attacks: D_f against matched never-seen samples", "",
              f"{comp['matched_forget']} forget samples compared with {comp['comparison_samples']}"
              f" test samples (no audited model trained on them) in {comp['strata']} strata of "
              f"class × difficulty; {comp['unmatched_forget']} forget samples had no never-seen "
              f"sample of their class and difficulty and are left out (their positions are in "
              f"audit.json). Never-seen level: the mean of the {refs['count']} references' "
              f"leave-one-out AUCs, {comp['never_seen']['level']:.3f} (spread "
              f"{comp['never_seen']['spread']:.3f}). The unmatched AUC against every test "
              "sample and its one-sided Mann–Whitney p are shown for comparison only. The interval "
              "column is each AUC ± the band's half-width.", ""]
    lines += _attack_table(record)
    lines += [""] + [f"- {a}: {text}" for a, text in record["attack_meanings"].items()]
    metrics = record.get("paper_metrics")
    if metrics:
        helps = {**ACCURACY_HELP, **metric_help()}
        lines += ["", "## The paper's metrics (section 5.4)", "",
                  "| metric | value | meaning |", "|---|---|---|"]
        lines += [f"| `{k}` | {fmt(metrics[k])} | {helps.get(k, '')} |" for k in PAPER_KEYS
                  if isinstance(metrics.get(k), (int, float))]
        if "mia" in metrics:
            lines += ["", f"The CatBoost MIA (Eq. 9) is the paper's population attack, kept as it "
                          f"is; its attacker's own accuracy is {metrics['mia_attacker_acc']:.3f} "
                          "(0.5: it learned nothing, and its MIA proves little)."]
    recipe = refs["recipe"]
    lines += ["", "## Reference models", "",
              f"- {refs['count']} models, each retrained on D_r ({refs['train_size']} samples) "
              "with its own seed: none saw any forget sample or any comparison sample",
              f"- recipe: `{recipe['model']}`, {recipe['epochs']} epochs, {recipe['optimizer']} at "
              f"lr {recipe['lr']:g} with {recipe['scheduler']} schedule, batch "
              f"{recipe['batch_size']}, augmentation {'on' if recipe['augment'] else 'off'} (from "
              f"{refs['recipe_source']})",
              f"- {refs['trained_now']} trained now ({refs['train_seconds']:.0f} s), "
              f"{refs['from_cache']} from the cache `{refs['cache_dir']}`; seed {refs['seed']}",
              "", "## The verdict rule", "", RULE]
    if record.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in record["notes"]]
    timings = record["timings"]
    lines += ["", f"Time: {timings['total_seconds']:.0f} s in all (references "
                  f"{timings['references_seconds']:.0f} s, attacks {timings['attacks_seconds']:.1f} s, "
                  f"paper's metrics {timings['paper_metrics_seconds']:.0f} s)."]
    if record.get("versions"):
        v = record["versions"]
        lines += [f"sftc {v.get('sftc')}, torch {v.get('torch')}."]
    return "\n".join(lines) + "\n"
