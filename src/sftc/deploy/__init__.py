"""Deletion requests over a model's life (``sftc deploy``): a deployment record with a
hash-chained ledger, a cumulative retain set, evidence for every earlier request on the newest
model, a cache purged of what trained on or holds outputs of removed samples, and recovery from
a ``kill -9`` at any point. docs/operations.md is the operator's guide.

One module per job: :mod:`.ledger` (the chain and its anchored head), :mod:`.folder` (the
layout, the lock, what the ledger says), :mod:`.samples` (the training set as ids and hashes;
the data mapped onto it; the splits), :mod:`.create` (``init``), :mod:`.apply` (unlearn and
audit a request), :mod:`.audits` (re-audits and the policy), :mod:`.purge` (the cache),
:mod:`.publish` (the steps of a publication), :mod:`.recovery` (after a kill), :mod:`.verify`,
:mod:`.forget` (``forget`` and ``recover``), :mod:`.status` (the read-only report),
:mod:`.entries` (what an entry must hold before anything acts on it), :mod:`.retention` (the
``--keep`` policy and ``prune``), :mod:`.names` (the ledger's pseudonyms), :mod:`.report` (one
request's page).
"""
from __future__ import annotations

from .apply import ForgetOptions
from .create import init
from .forget import NOT_PUBLISHED, forget, recover_now
from .status import status
from .verify import verify

__all__ = ["ForgetOptions", "NOT_PUBLISHED", "forget", "init", "recover_now", "status", "verify"]
