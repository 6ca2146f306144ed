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
    "forgotten": "Forgotten. The new model treats these samples like data it never saw: the "
                 "attack's measure lies within the margin around the never-seen level, with the "
                 "stated confidence.",
    "not-forgotten": "Not forgotten. The new model still treats these samples differently from "
                     "data it never saw: the attack's measure lies wholly outside the margin.",
    "not-proven": "Not proven either way. No difference from never-seen data was shown, but "
                  "no equivalence either: the evidence is too uncertain at this size to say "
                  "the samples were forgotten.",
    "nothing-detectable": "Nothing detectable. The audit detected no memory of these samples; "
                          "the audit's reason says what this outcome does and does not claim.",
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
