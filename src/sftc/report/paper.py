"""The paper's presentation conventions: the row order of Table 1."""
from __future__ import annotations

#: Row order of Table 1 after ORI and RT (section 5.5).
PAPER_METHOD_ORDER = ("ft", "neggrad+", "neggrad", "cf-k", "eu-k", "scrub", "bad-teaching", "sftc")
