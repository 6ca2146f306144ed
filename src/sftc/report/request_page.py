"""One deletion request as a page a data-protection officer can read: the same sections as
Markdown and as a self-contained HTML page (inline CSS, the figure as a base64 PNG, nothing
fetched from anywhere), from the facts :func:`sftc.deploy.report.gather` collects.

Sections: what was asked, how it was applied, the verdict in plain words with its figure, what
the evidence does and does not show, the cost, and the hashes that tie the page to the ledger.
"""
from __future__ import annotations

import base64
import html
import io

from .. import __version__
from .verdicts import colour, plain_words


def verdict_text(audit: dict) -> str:
    return audit["verdict"] + (f" ({audit['direction']})" if audit.get("direction") else "")


def _audits(facts: dict) -> list[tuple[str, dict]]:
    """(label, audit summary) of the request: its own audit, then its latest re-audit; for a
    request never published, its refused attempts' audits."""
    rid, out = facts["ledger_name"], []
    if facts["payload"] is not None:
        own = next(a for a in facts["payload"]["audits"] if a["request"] == rid)
        out.append((f"the audit on v{own['version_audited']}, when it was published", own))
        last = facts["last_audit"]
        if last and last[0] != own["version_audited"]:
            out.append((f"the latest re-audit, on v{last[0]}", last[1]))
        return out
    for entry in facts["refused"]:
        own = next((a for a in entry["payload"]["audits"] if a["request"] == rid), None)
        if own is not None:
            out.append((f"the refused attempt of entry {entry['seq']}", own))
    return out


def band_of(audit: dict) -> tuple[float, float | None, str]:
    """(half-width, refute half-width or None, name) of what an audit is judged against: the
    retrain band (the rule of issue 26), or the never-seen level's margin in entries of the old
    rule."""
    if "band" in audit:
        return audit.get("band") or 0.0, audit.get("refute"), "retrain band"
    return audit.get("margin") or 0.0, None, "never-seen level ± margin (the old rule)"


def figure_png(audits: list[tuple[str, dict]]) -> bytes:
    """Each audit's interval of the attack's AUC against the retrain band (shaded) and its
    refute line (dashed); entries of the old rule: the never-seen level and its margin."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [(label, a) for label, a in audits if a.get("interval")]
    fig, ax = plt.subplots(figsize=(7.0, 1.0 + 0.75 * max(len(shown), 1)))
    unknown: list[str] = []
    for y, (label, a) in enumerate(reversed(shown)):
        i, (m, refute, name) = a["interval"], band_of(a)
        ax.fill_betweenx([y - 0.35, y + 0.35], i["level"] - m, i["level"] + m, color="#2ca02c",
                         alpha=0.18, lw=0, label=name)
        ax.plot([i["level"]] * 2, [y - 0.35, y + 0.35], color="#2ca02c", lw=1)
        if refute is not None:
            for x in (i["level"] - refute, i["level"] + refute):
                ax.plot([x, x], [y - 0.35, y + 0.35], color="#d62728", lw=1, ls="--",
                        label="refute line")
        ax.errorbar([i["estimate"]], [y], xerr=[[i["estimate"] - i["low"]],
                                                [i["high"] - i["estimate"]]],
                    fmt="o", ms=7, capsize=4, color=colour(a["verdict"], unknown),
                    label=verdict_text(a))
    ax.set_yticks(range(len(shown)), [label for label, _ in reversed(shown)])
    ax.set_xlabel("attack AUC on the removed samples against never-seen ones (0.5: never "
                  "seen); retrained models land in the band")
    if not shown:
        ax.text(0.5, 0.5, "no interval on record", ha="center", va="center",
                transform=ax.transAxes)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    if unique:
        ax.legend(unique.values(), unique.keys(), fontsize=8, loc="upper center",
                  bbox_to_anchor=(0.5, -0.45 if len(shown) < 2 else -0.3), ncol=3)
    ax.grid(axis="x", alpha=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def setting_text(payload: dict) -> str:
    """The setting that was kept: learning rate, epochs, batch size, seed and the method's own
    options (not the engine's internals)."""
    setting = payload["chosen"]["setting"]
    keys = ("lr", "epochs", "batch_size", "seed", *sorted(payload.get("hparams") or {}))
    return ", ".join(f"{k.replace('_', ' ')} {setting[k]:g}" if isinstance(setting[k], float)
                     else f"{k.replace('_', ' ')} {setting[k]}" for k in keys if k in setting)


def _asked(facts: dict) -> list[tuple[str, str]]:
    intent = facts["intent"]
    p = intent["payload"]
    rows = [("Request", facts["request"]),
            ("Recorded in the ledger as", facts["ledger_name"] + (
                " (a keyed hash: the ledger never holds the plain id)"
                if facts["pseudonymised"] else " (this deployment predates pseudonyms)")),
            ("Samples to delete", str(len(p["removed"]))),
            ("First asked (the ledger's first intent entry)", facts["first_intent"]["time"]),
            ("Deployment", facts["deployment"]),
            ("Model", f"{facts['model']} trained on {facts['dataset']}")]
    return rows


def _applied(facts: dict) -> list[tuple[str, str]]:
    p, intent = facts["payload"], facts["intent"]["payload"]
    rows = [("Method", intent["method"]),
            ("Publication policy", f"--require {intent['require']}: a version is published "
                                   "only when every audit meets it")]
    if p is not None:
        rows += [("How the setting was chosen", p["chosen"]["how"]),
                 ("Setting", setting_text(p)),
                 ("Outcome", f"published as version v{p['version']} on "
                             f"{facts['published']['time']}"),
                 ("Version in use now", f"v{facts['head']['version']}"),
                 ("Retain set", f"{p['retain']['size']} samples, excluding every request so far")]
    else:
        rows.append(("Outcome", "not published: the version before it stays in use"))
    for entry in facts["refused"]:
        first = entry["payload"]["failed"][0]
        whose = "its own audit" if first["request"] == facts["ledger_name"] else \
            f"the re-audit of request {facts['plain'](first['request'])}"
        rows.append((f"Refused attempt ({entry['time']}, {entry['payload']['method']})",
                     f"{whose}: {first['why']}"))
    for entry in facts["rolled_back"]:
        rows.append((f"Rolled back ({entry['time']})", entry["payload"]["why"]))
    rows.append(("Retention policy", f"--keep {facts['keep']}"))
    return rows


def _shows(facts: dict, audits: list[tuple[str, dict]]) -> tuple[list[str], list[str]]:
    """What the evidence shows, and what it does not."""
    record = facts["payload"] or (facts["refused"][-1]["payload"] if facts["refused"] else {})
    evidence = record.get("evidence") or {}
    shows, not_shown = [], []
    for label, a in audits:
        i = a.get("interval")
        m, refute, name = band_of(a)
        against = (f"against the retrain band {i['level']:.3f} ± {m:.3f}, where models retrained "
                   "without these samples land" + (f" (refute line ± {refute:.3f})"
                                                    if refute is not None else "")
                   if "band" in a else f"against the never-seen level {i['level']:.3f} ± "
                                       f"{m:.3f} (the old margin rule)") if i else ""
        figures = (f"AUC {i['estimate']:.3f}, interval [{i['low']:.3f}, {i['high']:.3f}] at "
                   f"{i['confidence']:.0%} confidence, {against}") if i else \
            "no interval"
        shows.append(f"{label[0].upper() + label[1:]}: {verdict_text(a)} on {a['samples']} samples "
                     f"({figures}).")
        if not a.get("power", True):
            not_shown.append(f"In {label}, the attack did not show that the model before "
                             "unlearning remembered these samples (no power): the audit cannot "
                             "tell forgotten from never remembered.")
    if evidence:
        shows.append(f"The attack ({evidence.get('attack')}) compares the model's outputs on the "
                     f"removed samples with its outputs on never-seen samples of the same "
                     f"classes, calibrated on {evidence.get('references')} reference models "
                     "retrained without any removed sample.")
    not_shown += [
        "It tests one attack at a stated confidence; it is not a proof that no information "
        "about the samples remains in any form.",
        "Copies outside this deployment (backups, other caches, the data itself) are not "
        "covered by it.",
    ]
    if facts["later_versions"] and facts["last_audit"] and \
            facts["last_audit"][0] != facts["later_versions"][-1]:
        not_shown.append(f"It says nothing of the newest version v{facts['later_versions'][-1]}:"
                         " this request was not re-audited on it (its samples' files are gone, "
                         "or the version that held them was pruned under the retention policy).")
    return shows, not_shown


def _cost(facts: dict) -> list[str]:
    p = facts["payload"] or (facts["refused"][-1]["payload"] if facts["refused"] else None)
    if p is None:
        return ["The record holds no cost for this request (it never reached an outcome)."]
    t, refs, chosen = p["timings"], p["references"], p["chosen"]
    out = [f"The whole request took {t['total_seconds']:.1f} s: finding the setting and "
           f"unlearning {t['unlearn_seconds']:.1f} s, audits {t['audits_seconds']:.1f} s; "
           f"its audits used {refs['count']} reference models ({refs['trained_now']} trained "
           f"for it in {refs['train_seconds']:.1f} s, {refs['from_cache']} from the cache)."]
    cost = p.get("cost") or {}
    if cost.get("retrainings"):
        out.append(f"In all it cost {cost['retrainings']:.1f} times one retraining from scratch "
                   f"on the retain set (one retraining took about "
                   f"{cost['one_retraining_seconds']:.1f} s here)"
                   + ("; retraining would have been cheaper." if cost["retraining_cheaper"]
                      else "."))
    if p["method"] == "retrain":
        out.append("The method was retraining from scratch on the retain set: its cost is "
                   "that of retraining.")
    elif chosen.get("search_over_retrain") is not None:
        out.append(f"The search took {chosen['search_over_retrain']:.2f} times as long as "
                   "retraining the model from scratch on the retain set.")
    elif not cost.get("retrainings"):
        out.append("The record holds no retraining cost for this request, so its cost cannot "
                   "be compared with retraining from scratch.")
    return out


def _hashes(facts: dict, audits: list[tuple[str, dict]]) -> list[tuple[str, str]]:
    intent = facts["intent"]
    rows = [(f"Intent entry {intent['seq']} (the one applied)", intent["sha256"]),
            ("Request file SHA-256", intent["payload"]["request_file_sha256"])]
    if facts["published"] is not None:
        p = facts["payload"]
        rows += [(f"Published entry {facts['published']['seq']}", facts["published"]["sha256"]),
                 (f"Model before (v{p['parent']['version']})", p["parent"]["sha256"]),
                 (f"Model after (v{p['version']})", p["child"]["sha256"]),
                 ("Retain set content", p["retain"]["sha256"])]
    for label, a in audits:
        if a.get("file_sha256"):
            rows.append((f"Audit file ({label})", a["file_sha256"]))
    for entry in facts["refused"]:
        rows.append((f"Refused entry {entry['seq']}", entry["sha256"]))
    head = facts["head"]
    rows.append((f"Ledger head when written ({head['count']} entries)", head["sha256"]))
    return rows


def sections(facts: dict) -> dict:
    audits = _audits(facts)
    main = audits[-1][1] if audits else None
    verdict = (f"{verdict_text(main)}, in {audits[-1][0]}" if main else "no audit on record")
    shows, not_shown = _shows(facts, audits)
    status = (f"published in v{facts['payload']['version']}" if facts["payload"] is not None
              else "not published")
    pruned = [f"Entry {p['seq']} ({p['time']}, --keep {p['keep']}) removed "
              + (", ".join(f"v{v}" for v in p["versions"]) or "no version")
              + f" and {p['attempts']} refused attempt(s); their SHA-256 stay in the ledger."
              for p in facts["pruned"]]
    return {"title": f"Deletion request {facts['request']}: {status}", "audits": audits,
            "verdict": verdict, "verdict_raw": main["verdict"] if main else None,
            "plain": plain_words(main["verdict"]) if main else
            "No audit of this request is on record.",
            "reason": main.get("reason") if main else None,
            "asked": _asked(facts), "applied": _applied(facts), "shows": shows,
            "not_shown": not_shown, "cost": _cost(facts), "hashes": _hashes(facts, audits),
            "pruned": pruned, "verified": facts["verified"]}


def markdown(s: dict) -> str:
    def table(rows):
        return ["| | |", "|---|---|", *(f"| {k} | {str(v).replace('|', '/')} |"
                                       for k, v in rows), ""]
    md = [f"# {s['title']}", "", f"**Verdict: {s['verdict']}.** {s['plain']}", ""]
    if s["reason"]:
        md += [f"The audit's own reason: {s['reason']}", ""]
    md += ["![the verdict's figure](verdict.png)", "", "## What was asked", "",
           *table(s["asked"]), "## How it was applied", "", *table(s["applied"]),
           "## What the evidence shows", "", *(f"- {x}" for x in s["shows"]), "",
           "## What it does not show", "", *(f"- {x}" for x in s["not_shown"]), "",
           "## Cost", "", *(f"- {x}" for x in s["cost"]), ""]
    if s["pruned"]:
        md += ["## What the deployment no longer keeps", "", *(f"- {x}" for x in s["pruned"]),
               ""]
    md += ["## Hashes that tie this page to the ledger", "", *table(s["hashes"]),
           *(f"- {x}" for x in s["verified"]), "", f"Written by sftc {__version__}.", ""]
    return "\n".join(md)


CSS = """body{font-family:Georgia,'DejaVu Serif',serif;max-width:52rem;margin:2rem auto;
padding:0 1rem;color:#222;line-height:1.45}h1{font-size:1.6rem;margin-bottom:.4rem}
h2{font-size:1.15rem;border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:1.8rem}
.verdict{border-left:.5rem solid var(--c);background:#f6f6f6;padding:.8rem 1rem;margin:1rem 0}
.verdict strong{color:#111}.chip{display:inline-block;width:.8rem;height:.8rem;
border-radius:50%;background:var(--c);margin-right:.4rem;vertical-align:baseline}
table{border-collapse:collapse;width:100%;font-size:.92rem}
td{border-bottom:1px solid #e4e4e4;padding:.3rem .5rem;vertical-align:top}
td:first-child{width:34%;color:#555}code{font-size:.82rem;word-break:break-all}
img{max-width:100%;display:block;margin:1rem auto}footer{margin-top:2rem;color:#777;
font-size:.85rem}"""


def page_html(s: dict, png: bytes) -> str:
    e = html.escape

    def table(rows, code=False):
        cell = (lambda v: f"<code>{e(str(v))}</code>") if code else (lambda v: e(str(v)))
        return "<table>" + "".join(f"<tr><td>{e(k)}</td><td>{cell(v)}</td></tr>"
                                   for k, v in rows) + "</table>"

    def items(xs):
        return "<ul>" + "".join(f"<li>{e(x)}</li>" for x in xs) + "</ul>"
    image = base64.b64encode(png).decode("ascii")
    reason = f"<p>The audit's own reason: {e(s['reason'])}</p>" if s["reason"] else ""
    pruned = (f"<h2>What the deployment no longer keeps</h2>{items(s['pruned'])}"
              if s["pruned"] else "")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{e(s['title'])}</title><style>{CSS}</style></head><body>"
            f"<h1>{e(s['title'])}</h1>"
            f"<div class=\"verdict\" style=\"--c:{colour(s['verdict_raw'])}\">"
            f"<strong><span class=\"chip\"></span>Verdict: {e(s['verdict'])}.</strong> "
            f"{e(s['plain'])}{reason}</div>"
            f"<img alt=\"the audit's interval against the retrain band\" "
            f"src=\"data:image/png;base64,{image}\">"
            f"<h2>What was asked</h2>{table(s['asked'])}"
            f"<h2>How it was applied</h2>{table(s['applied'])}"
            f"<h2>What the evidence shows</h2>{items(s['shows'])}"
            f"<h2>What it does not show</h2>{items(s['not_shown'])}"
            f"<h2>Cost</h2>{items(s['cost'])}{pruned}"
            f"<h2>Hashes that tie this page to the ledger</h2>{table(s['hashes'], code=True)}"
            f"{items(s['verified'])}<footer>Written by sftc {e(__version__)}.</footer>"
            "</body></html>\n")


def render(facts: dict) -> dict:
    """``{"markdown", "html", "png"}`` of one request."""
    s = sections(facts)
    png = figure_png(s["audits"])
    return {"markdown": markdown(s), "html": page_html(s, png), "png": png}
