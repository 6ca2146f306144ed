"""The audit's report.md and its short summary, from the audit record (``audit.json``)."""
from __future__ import annotations

from .tables import fmt
from .text import METRIC_HELP

ROLE_NAMES = {"original": "original M", "unlearned": "unlearned M_u", "oracle": "oracle M_R"}
ATTACK_NAMES = {"rmia-online": "RMIA online", "rmia-offline": "RMIA offline",
                "lira-online": "LiRA online", "lira-offline": "LiRA offline"}
PAPER_KEYS = ("acc_retain", "acc_forget", "acc_val", "acc_test", "acc_err_retrain", "acc_dis",
              "acc_err_original", "js", "js_paper", "mia", "mia_attacker_acc")
ACCURACY_HELP = {
    "acc_retain": "accuracy of M_u on the retain set D_r",
    "acc_forget": "accuracy of M_u on the forget set D_f",
    "acc_val": "accuracy of M_u on the validation split",
    "acc_test": "accuracy of M_u on the test split D_t",
}
RULE = (
    "Power: the decisive attack tells the original model's D_f from never-seen samples D_t "
    "(one-sided Mann–Whitney U test, p < α). Without power the verdict is `inconclusive`: an "
    "attack that cannot see membership in the original proves nothing either way. With power, "
    "the unlearned model is `not-forgotten` when its D_f and D_t scores differ (two-sided p < 2α; "
    "*remembered* when D_f scores higher, *over-forgotten* when lower, which also singles the "
    "forget set out), and `forgotten` otherwise: D_f is no more distinguishable from never-seen "
    "data than the test can detect at this power. The original itself is never `forgotten` when "
    "there is power (same scores, two-sided p = 2 × one-sided p); a true oracle is "
    "`not-forgotten` with probability 2α.")


def _p(value) -> str:
    return "—" if value is None else f"{value:.2g}"


def _tpr(figures: dict, rate: str) -> str:
    value = figures["tpr_at_fpr"].get(rate)
    return "n/a" if value is None else f"{value:.3f}"


def verdict_text(record: dict) -> str:
    direction = f" ({record['direction']})" if record.get("direction") else ""
    return f"{record['verdict']}{direction}"


def power_text(record: dict) -> str:
    power = record["power_on_original"]
    rates = ", ".join(f"TPR@{float(r) * 100:g}% {('n/a' if v is None else f'{v:.3f}')}"
                      for r, v in power["tpr_at_fpr"].items())
    state = "has power" if power["has_power"] else "NO power"
    return (f"{ATTACK_NAMES[power['attack']]} on the original: AUC {power['auc']:.3f}, {rates}, "
            f"one-sided p = {_p(power['p_greater'])} → {state} at α = {power['alpha']:g}")


def audit_summary(record: dict, out=None) -> list[str]:
    """A few readable lines for stdout, verdict first."""
    refs = record["references"]
    removed = record["removed"]
    unlearned = record["attacks"][record["decisive_attack"]]["unlearned"]
    lines = [f"verdict: {verdict_text(record)} — {record['reason']}",
             f"removed: {removed['count']} samples of {record['data']['dataset']} "
             f"({removed['spec']}), SHA-256 {removed['sha256'][:16]}…",
             f"power: {power_text(record)}",
             f"unlearned: AUC {unlearned['auc']:.3f}, two-sided p = {_p(unlearned['p_two_sided'])} "
             f"(D_f {len_or(record, 'n_positives')} vs never-seen D_t "
             f"{len_or(record, 'n_negatives')})"]
    if record.get("oracle_as_unlearned"):
        oracle = record["attacks"][record["decisive_attack"]]["oracle"]
        lines.append(f"oracle, audited the same way: {verdict_text(record['oracle_as_unlearned'])} "
                     f"(AUC {oracle['auc']:.3f}, two-sided p = {_p(oracle['p_two_sided'])})")
    lines.append(f"references: {refs['count']} models ({refs['trained_now']} trained now, "
                 f"{refs['from_cache']} from the cache), recipe from {refs['recipe_source']}")
    metrics = record.get("paper_metrics")
    if metrics:
        parts = [f"{k} {metrics[k]:.4f}" for k in ("acc_forget", "acc_test", "acc_dis", "js",
                                                    "mia", "mia_attacker_acc") if k in metrics]
        lines.append("paper's metrics: " + ", ".join(parts))
    for note in record.get("notes", []):
        lines.append(f"note: {note}")
    if out is not None:
        lines.append(f"wrote {out}/audit.json and report.md "
                     f"({record['timings']['total_seconds']:.0f} s)")
    return lines


def len_or(record: dict, key: str) -> str:
    return str(record["data"].get(key, "?"))


def audit_markdown(record: dict) -> str:
    """report.md: the verdict, what was removed, the models, every attack, the paper's metrics,
    the references and the rule."""
    data, removed, refs = record["data"], record["removed"], record["references"]
    decisive = record["decisive_attack"]
    lines = [f"# sftc audit: {verdict_text(record)}", "",
             f"**Verdict: `{record['verdict']}`**"
             + (f" ({record['direction']})" if record.get("direction") else "")
             + f". {record['reason'][0].upper()}{record['reason'][1:]}.", "",
             f"Decided by {ATTACK_NAMES[decisive]} with {refs['count']} reference models at "
             f"α = {record['alpha']:g}. {power_text(record)}."]
    if record.get("oracle_as_unlearned"):
        lines += ["", f"The oracle, audited as if it were the unlearned model: "
                      f"`{verdict_text(record['oracle_as_unlearned'])}`."]
    lines += ["", "## What was removed", "",
              f"- {removed['count']} of {data['sizes']['train']} training samples of "
              f"`{data['dataset']}`, forget set `{removed['spec']}`",
              f"- SHA-256 of their positions in the training set: `{removed['sha256']}`",
              f"- per class: {removed['class_histogram']}"]
    listed = removed.get("names") or removed["positions"]
    what = "image paths" if removed.get("names") else "positions in the training set"
    head = ", ".join(str(v) for v in listed[:20]) + (" …" if len(listed) > 20 else "")
    lines += [f"- {what}: {head} (all {len(listed)} in audit.json)", "",
              "## Models audited", "", "| model | checkpoint | SHA-256 of the file | "
              "SHA-256 of the weights |", "|---|---|---|---|"]
    for role, info in record["models"].items():
        lines.append(f"| {ROLE_NAMES[role]} | {info['checkpoint'] or '(in memory)'} | "
                     f"`{info['sha256'] or '—'}` | `{info['weights_sha256']}` |")
    rates = record["settings"]["fprs"]
    lines += ["", "## Membership attacks: D_f against never-seen samples", "",
              f"Positives: the {data['n_positives']} forget samples. Negatives: the "
              f"{data['n_negatives']} test samples, which no audited model trained on. AUC 0.5 = "
              "indistinguishable. p (D_f higher): one-sided Mann–Whitney U; p (two-sided): the "
              "verdict's test.", "",
              "| attack | model | AUC | " + " | ".join(f"TPR@{r * 100:g}% FPR" for r in rates)
              + " | p (D_f higher) | p (two-sided) |",
              "|---|---|---|" + "---|" * len(rates) + "---|---|"]
    for variant, roles in record["attacks"].items():
        for role, fig in roles.items():
            if "skipped" in fig:
                lines.append(f"| {ATTACK_NAMES[variant]} | {ROLE_NAMES[role]} | n/a ("
                             f"{fig['skipped']}) |" + " |" * len(rates) + " | |")
                continue
            mark = " **(decides)**" if variant == decisive and role == "unlearned" else ""
            lines.append(f"| {ATTACK_NAMES[variant]}{mark} | {ROLE_NAMES[role]} | "
                         f"{fig['auc']:.3f} | " + " | ".join(_tpr(fig, f"{r:g}") for r in rates)
                         + f" | {_p(fig['p_greater'])} | {_p(fig['p_two_sided'])} |")
    unresolved = [r for r, ok in record["settings"]["fprs_resolvable"].items() if not ok]
    if unresolved:
        lines += ["", f"n/a: {data['n_negatives']} never-seen samples cannot resolve a false-"
                      f"positive rate of {', '.join(unresolved)} (that needs 1/FPR of them)."]
    lines += [""] + [f"- {ATTACK_NAMES[v]}: {text}" for v, text in
                     record["attack_meanings"].items()]
    lira = record["settings"]["lira_variance"] or {"online": "n/a", "offline": "n/a"}
    lines += [f"- LiRA variance: {lira['online']} (online), {lira['offline']} (offline); "
              f"RMIA: γ = {record['settings']['rmia_gamma']:g}, offline a = "
              f"{record['settings']['rmia_offline_a']:g}, population = the "
              f"{refs['population_size']} validation samples."]
    metrics = record.get("paper_metrics")
    if metrics:
        helps = {**ACCURACY_HELP, **METRIC_HELP}
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
              f"- {refs['count']} models, each trained on a random half "
              f"({refs['members_per_reference']} samples) of the pool {refs['pool']} ({refs['pool_size']} samples) in "
              f"complementary pairs: every pool sample is IN for exactly {refs['in_per_sample']} "
              "of them and OUT for the rest",
              f"- recipe: `{recipe['model']}`, {recipe['epochs']} epochs, Adam at lr "
              f"{recipe['lr']:g} with cosine annealing, batch {recipe['batch_size']}, augmentation "
              f"{'on' if recipe['augment'] else 'off'} (from {refs['recipe_source']})",
              f"- {refs['trained_now']} trained now ({refs['train_seconds']:.0f} s), "
              f"{refs['from_cache']} from the cache `{refs['cache_dir']}`; pool seed {refs['seed']}",
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
