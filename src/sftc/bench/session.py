"""What a benchmark and a sweep share: opened store, split, references, one tracked session.

Both compose a :class:`Session` (neither inherits the other): it validates the configuration,
opens the output directory (:class:`~sftc.bench.store.Store`), loads the split and sets up the
reference models, and :meth:`Session.run` records a session in the manifest around the steps,
with the progress display. Under torchrun (a benchmark only) every rank opens a session; rank 0
holds the directory, and the ranks compare their configuration, data, ``--out`` and cache before
any work (:meth:`Session.agree`, with the command line's :func:`sftc.cli.ranks.agree`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, TypeVar

from .. import distributed
from ..engine import resolve_device
from ..errors import SftcError
from .cache import default_cache_dir, split_fingerprint
from .progress import Progress, Unit
from .seed_models import OriginalsAndOracles
from .split import make_split
from .store import Store

T = TypeVar("T")


class Session:
    def __init__(self, config, out: str | Path, *, kind: str, device: str = "auto",
                 cache_dir: str | Path | None = None, progress: bool = True,
                 resume: bool = False, command: str | None = None, split=None, log=None):
        config.validate()
        if kind != "benchmark" and distributed.active():
            raise SftcError(f"sftc {kind} runs as one process; start it without torchrun")
        self.config = config
        self.device = resolve_device(device)
        self.device_name = device
        self.progress = progress
        self.command = command
        self.log = log or (lambda text: None)
        self.store = Store.open(out, config, kind=kind, resume=resume,
                                member=not distributed.is_main())
        try:
            self.split = split if split is not None else make_split(config)
            self.cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
            self.seed_models = OriginalsAndOracles(config, self.split, self.store, self.cache,
                                         device_name=device, device=self.device,
                                         progress=progress, log=self.log)
        except BaseException:
            self.store.close()
            raise

    def agree(self, agree: Callable[..., None]) -> None:
        """``agree(**facts)`` on what the ranks of a torchrun job must share (configuration,
        data, ``--out``, cache; the command line's :func:`sftc.cli.ranks.agree`); the output
        directory is released when they do not agree."""
        try:
            agree(configuration=self.config.to_dict(), data=split_fingerprint(self.split),
                  output=str(self.store.out.resolve()), cache=str(self.cache.resolve()))
        except BaseException:
            self.store.close()
            raise

    def run(self, units: list[Unit], steps: Callable[[Progress], T], desc: str) -> T:
        """``steps(progress)`` inside a session of the manifest, with the progress display;
        the session is marked finished only when the steps return. Under torchrun rank 0
        keeps the manifest and shows the progress."""
        main = distributed.is_main()
        if main:
            ranks = {"world_size": distributed.world()} if distributed.active() else {}
            self.store.begin_session(self.config, self.command, self.device, **ranks)
            for note in (self.store.resume_note(units), self.store.stale_note()):
                if note:
                    self.log(note)
        progress = Progress(units, enabled=self.progress and main, desc=desc)
        try:
            result = steps(progress)
            if main:
                self.store.end_session()
        finally:
            progress.close()
        return result
