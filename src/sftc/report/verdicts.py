"""The audit's verdicts as colours and plain words, one place for every figure and report.

A verdict string this module does not know (a newer rule's outcome) is shown as it is, in its own
neutral colour and with words that say the report has no plain text for it, never an error.
"""
from __future__ import annotations

#: One colour per verdict (a verdict with its direction, as the figures' rows carry it); no two
#: verdicts share one.
COLOURS = {"forgotten": "#2ca02c",
           "not-forgotten (remembered)": "#d62728",
           "not-forgotten (over-forgotten)": "#ff7f0e",
           "not-forgotten (class still recognised)": "#8c2d04",
           "not-forgotten": "#a50f15",
           "not-proven": "#7f7f7f",
           "inconclusive": "#bcbd22",
           "nothing-detectable": "#1f77b4"}
#: The colours of verdicts this table does not know, in turn (none of them is in COLOURS).
UNKNOWN = ("#9467bd", "#e377c2", "#17becf", "#8c564b")

PLAIN = {
    "forgotten": "Forgotten. The new model treats these samples as models retrained without "
                 "them do: the attack's measure lies within the retrain band (where 90 % of "
                 "retrained models land), and the attack had the power to see the asked share "
                 "(by default half) of the original model's difference from them.",
    "not-forgotten": "Not forgotten. The attack tells the new model from models retrained "
                     "without these samples: its measure lies beyond the retrain band's refute "
                     "line (a model retrained from scratch is called so 5 % of the time).",
    "not-proven": "Not proven either way. The new model was not told apart from models "
                  "retrained without these samples, but the evidence is too uncertain at this "
                  "size to certify that they were forgotten; the audit's reason says what "
                  "would decide it.",
    "nothing-detectable": "Nothing detectable. The attack cannot tell even the original model "
                          "from models retrained without these samples: at this size there was "
                          "nothing it could detect to remove, so the audit neither certifies "
                          "nor refutes the forgetting.",
    "inconclusive": "Inconclusive. The audit could not reach a verdict.",
}


def colour(verdict: str | None, seen: list[str] | None = None) -> str:
    """The colour of ``verdict``; an unknown one gets the next free colour of :data:`UNKNOWN`
    in the order of ``seen`` (the unknown verdicts met so far, extended here)."""
    if verdict in COLOURS:
        return COLOURS[verdict]
    seen = seen if seen is not None else []
    if verdict not in seen:
        seen.append(verdict)
    return UNKNOWN[seen.index(verdict) % len(UNKNOWN)]


def plain_words(verdict: str | None) -> str:
    """What a verdict means, in a sentence or two a non-specialist can read."""
    base = (verdict or "").split(" (")[0]
    if base in PLAIN:
        return PLAIN[base]
    return (f"The audit's verdict is '{verdict}', an outcome this report has no plain-words "
            "text for; the audit file's reason says what it means.")
