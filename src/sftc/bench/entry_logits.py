"""A cached model's logits on a set of queried samples, stored in its cache entry
(:meth:`sftc.bench.cache.ModelCache.logits`): ``logits-<index[:16]>.pt``, with the queried
samples' content digests in ``logits-<index[:16]>.members.json`` written first (what a deletion
must purge, :mod:`sftc.bench.members`)."""
from __future__ import annotations

import hashlib
from io import BytesIO

import torch

from ..data import Split
from ..io import atomic_write_bytes, atomic_write_json
from .members import members_path, members_record


def entry_logits(cached, split: Split, index: torch.Tensor, device: str,
                 foreign) -> tuple[torch.Tensor, bool]:
    """The logits of ``cached`` on ``index`` and whether they came from its entry; a stored file
    that does not load or does not fit is refused with ``foreign(entry, why)``."""
    from ..engine import predict_logits, resolve_device

    index = torch.as_tensor(index, dtype=torch.long).cpu()
    tag = hashlib.sha256(index.numpy().astype("<i8").tobytes()).hexdigest()[:16]
    path = cached.path / f"logits-{tag}.pt"
    shape = (len(index), split.data.num_classes)
    if path.is_file():
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a corrupt or unsafe file
            raise foreign(cached.path, f"{path.name} does not load: "
                                       f"{type(exc).__name__}") from None
        if not (isinstance(stored, dict) and isinstance(stored.get("logits"), torch.Tensor)
                and isinstance(stored.get("index"), torch.Tensor)
                and tuple(stored["logits"].shape) == shape
                and torch.equal(stored["index"].long(), index)
                and bool(torch.isfinite(stored["logits"]).all())):
            raise foreign(cached.path, f"{path.name} is not {shape[0]}x{shape[1]} "
                                       "finite logits of these samples")
        return stored["logits"].float(), True
    target = resolve_device(device)
    model = cached.model.to(target)
    logits = predict_logits(model, split.data, index.to(target), target).float().cpu()
    buffer = BytesIO()
    torch.save({"index": index.clone(), "logits": logits}, buffer)
    atomic_write_json(members_path(path), members_record(split.data, index))
    atomic_write_bytes(path, buffer.getvalue())
    return logits, False
