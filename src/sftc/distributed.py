"""The process group of a torchrun job, under the name the layers above the engine (cli/, bench/)
and users' scripts import: every name here is :mod:`sftc.engine.process_group`'s.

A data-parallel run is asked for in the call (``sftc.train(..., data_parallel=True)``,
``sftc.engine.run(..., parallel=job)``); what a command does as one rank of a job (agreement at
start, rank 0 writing, one exit status) is :mod:`sftc.cli.ranks`'s.
"""
from __future__ import annotations

from .engine.process_group import (DEFAULT_PHASE_TIMEOUT, DEFAULT_TIMEOUT, PHASE_TIMEOUT_ENV,
                                   TIMEOUT_ENV, Job, LostContact, active, barrier, current,
                                   env_rank, env_world, error_text, exchange, is_comm_failure,
                                   is_main, job, launched, lost_contact_text, mine, rank,
                                   seconds_from_env, share, world)

__all__ = ["DEFAULT_PHASE_TIMEOUT", "DEFAULT_TIMEOUT", "PHASE_TIMEOUT_ENV", "TIMEOUT_ENV", "Job",
           "LostContact", "active", "barrier", "current", "env_rank", "env_world", "error_text",
           "exchange", "is_comm_failure", "is_main", "job", "launched", "lost_contact_text",
           "mine", "rank", "seconds_from_env", "share", "world"]
