"""``sftc.unlearn``: the one call that unlearns with a fixed setting (:mod:`sftc.api`) or searches
until the evidence says forgotten (:mod:`sftc.bench.until`). It sits above both, so that the
package's face imports neither."""
from __future__ import annotations

from .errors import SftcError


def unlearn(model, split, method: str = "sftc", *, until: str | None = None, **options):
    """Unlearn ``split.forget`` from ``model`` with ``method`` (:func:`sftc.api.unlearn`: a fixed
    learning rate and epoch count), or with ``until="forgotten"`` search the learning rate and
    stop on the evidence (:func:`sftc.bench.until.unlearn_until_forgotten`: the options are its
    :class:`~sftc.bench.until.SearchConfig` fields and ``audit_config``, ``recipe``, ``device``,
    ``progress``; returns its :class:`~sftc.bench.until.SearchResult`)."""
    if until is None:
        from .api import unlearn as fixed

        return fixed(model, split, method, **options)
    if until != "forgotten":
        raise SftcError(f"until must be 'forgotten' (or None for a fixed setting), got {until!r}")
    from .bench.until import unlearn_until_forgotten

    return unlearn_until_forgotten(model, split, method=method, **options)
