"""What a cached model trained on and what its cached outputs are of, by content.

A deletion must purge every cached model that trained on a removed sample and every cached file
of outputs on one, also after the removed samples' files are gone. So :class:`~sftc.bench.cache.
ModelCache` records, beside what it stores, the content digests of the samples involved:
``meta.json`` those of the training subset, each ``logits-*.members.json`` those of the logits
file's queried samples (:func:`members_record`); :func:`cached_members` reads them back.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

#: How a member is named: the first 16 hex digits (64 bits) of :func:`sample_digests`. A shared
#: prefix can only make a purge remove more, never less.
MEMBERS = "sample-sha256[:16]"


def sample_digests(data, index) -> list[str]:
    """Per sample at ``index``: the SHA-256 (hex) of its content, the stored input's dtype, shape
    and bytes and its label (a streamed dataset's samples: their ids and labels)."""
    index = torch.as_tensor(index, dtype=torch.long).cpu()
    labels = data.labels.cpu()[index].tolist()
    images = getattr(data, "images", None)
    if images is None:
        ids = getattr(data, "ids", None) or []
        return [hashlib.sha256(f"id:{ids[i] if i < len(ids) else i}:{y}".encode()).hexdigest()
                for i, y in zip(index.tolist(), labels)]
    out = []
    for start in range(0, len(index), 4096):
        chunk = images[index[start:start + 4096].to(images.device)].detach().cpu().contiguous()
        head = f"{chunk.dtype}:{tuple(chunk.shape[1:])}:".encode()
        rows = chunk.reshape(len(chunk), -1).view(torch.uint8).numpy()
        for row, y in zip(rows, labels[start:start + 4096]):
            out.append(hashlib.sha256(head + row.tobytes() + int(y).to_bytes(8, "little"))
                       .hexdigest())
    return out


def members_record(data, index) -> dict:
    """What ``meta.json`` (the training subset) and a logits file's ``.members.json`` (its
    queried samples) record of their samples."""
    return {"digest": MEMBERS, "samples": [d[:16] for d in sample_digests(data, index)]}


def members_path(logits_path: Path) -> Path:
    return Path(logits_path).with_suffix(".members.json")


def _read_members(path: Path) -> list[str] | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict) or record.get("digest") != MEMBERS:
        return None
    samples = record.get("samples")
    return samples if isinstance(samples, list) else None


def cached_members(entry: Path) -> dict:
    """An entry's members: ``{"model": digests of its training subset, "logits": {file name:
    digests of its queried samples}}``; None where they are not recorded (an entry written by
    older code, or interrupted)."""
    entry = Path(entry)
    model = None
    try:
        meta = json.loads((entry / "meta.json").read_text())
        record = meta.get("members") if isinstance(meta, dict) else None
        if isinstance(record, dict) and record.get("digest") == MEMBERS \
                and isinstance(record.get("samples"), list):
            model = record["samples"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        pass
    logits = {p.name: _read_members(members_path(p)) for p in sorted(entry.glob("logits-*.pt"))}
    return {"model": model, "logits": logits}
