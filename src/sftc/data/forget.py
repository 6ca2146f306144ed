"""Forget-set specifications: data, not code.

A specification is a short string, usable from the command line and the API:

``random:0.1``     10 % of every class of the training set (seeded); ``random:500`` 500 per class
``classes:2,4``    every training sample of classes 2 and 4
``first:1500``     the first 1,500 training rows (the MUFAC protocol)
``file:PATH``      indices into the training set from ``.npy``, ``.txt`` (one per line) or ``.json``;
                   for a dataset whose samples are files (``imagefolder``) a text file lists the
                   images' relative paths instead, one per line

Indices always count positions in the training set (0 .. len(train) - 1), as the paper's
FER-2013 and CIFAR-10 index files do. A relative ``file:`` path is looked up in the working
directory first, then in the dataset's ``--data-dir``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..errors import SftcError

SPEC_HELP = ("random:FRACTION|random:COUNT_PER_CLASS, classes:C1,C2, first:N or "
             "file:PATH(.npy/.txt/.json)")


def resolve_forget(spec: str | torch.Tensor | np.ndarray | list, train_labels: torch.Tensor,
                   seed: int = 0) -> torch.Tensor:
    """Turn a forget specification into sorted int64 positions into the training set.

    Raises :class:`SftcError` for an unknown spec, out-of-range or repeated indices, an empty
    forget set or one that covers the whole training set.
    """
    n = int(train_labels.shape[0])
    if isinstance(spec, str):
        positions = _from_string(spec, train_labels, seed)
        origin = spec
    else:
        positions = np.asarray(spec.cpu() if isinstance(spec, torch.Tensor) else spec)
        origin = "the given forget indices"
    return validate_positions(positions, n, origin)


def validate_positions(positions, n_train: int, origin: str) -> torch.Tensor:
    """Sorted int64 positions from whatever a user gave: a list, array or mask of whole numbers.

    Anything else (strings, nulls, fractions, nested lists, NaN or huge values, an empty list, a
    repeat, an index out of range, every sample) is a one-line :class:`SftcError` naming it.
    """
    try:
        positions = np.asarray(positions)
    except (ValueError, TypeError):
        raise SftcError(f"{origin}: forget indices must be a flat list of whole numbers") from None
    if positions.ndim > 1:
        raise SftcError(f"{origin}: forget indices must be a flat list of whole numbers, got an "
                        f"array shaped {positions.shape}")
    positions = positions.reshape(-1)
    if positions.dtype == bool:
        if positions.shape != (n_train,):
            raise SftcError(f"{origin}: a boolean forget mask needs {n_train} entries, "
                            f"got {positions.shape[0]}")
        positions = np.flatnonzero(positions)
    if positions.dtype.kind not in "iuf" and positions.size:
        bad = next((v for v in positions.tolist()
                    if isinstance(v, bool) or not isinstance(v, (int, float))), positions[0])
        raise SftcError(f"{origin}: forget indices must be whole numbers, found {bad!r}")
    if positions.size == 0:
        raise SftcError(f"{origin}: the forget set is empty; name at least one training sample")
    if positions.dtype.kind == "f":
        finite = np.isfinite(positions)
        if not finite.all() or not np.all(np.mod(positions, 1) == 0):
            bad = positions[~finite][0] if not finite.all() else \
                positions[np.mod(positions, 1) != 0][0]
            raise SftcError(f"{origin}: forget indices must be whole numbers, found {bad.item()!r}")
    out_of_range = positions[(positions < 0) | (positions >= n_train)]
    if out_of_range.size:
        value = out_of_range[0]
        value = int(value) if abs(float(value)) < 2 ** 62 else float(value)
        raise SftcError(f"{origin}: forget index {value} is out of range; the training set "
                        f"has {n_train} samples (valid indices 0..{n_train - 1})")
    positions = positions.astype(np.int64)
    uniq, counts = np.unique(positions, return_counts=True)
    if (counts > 1).any():
        raise SftcError(f"{origin}: forget index {int(uniq[counts > 1][0])} is repeated; "
                        "list each sample once")
    if uniq.size == n_train:
        raise SftcError(f"{origin}: the forget set is the whole training set ({n_train} samples); "
                        "nothing would be retained, so retrain from scratch on nothing instead")
    return torch.from_numpy(uniq)


def check_seed(seed, what: str = "--seed") -> int:
    """Seeds are whole numbers 0 .. 2**32 - 1: what numpy's and torch's generators both accept."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) \
            or not 0 <= int(seed) < 2 ** 32:
        raise SftcError(f"{what} must be a whole number 0 .. {2 ** 32 - 1}, got {seed!r}")
    return int(seed)


def _from_string(spec: str, labels: torch.Tensor, seed: int) -> np.ndarray:
    kind, _, arg = spec.partition(":")
    kind = kind.strip().lower()
    if not arg:
        raise SftcError(f"forget spec {spec!r} has no argument; use {SPEC_HELP}")
    y = labels.cpu().numpy()
    if kind == "random":
        return _random_per_class(arg, y, seed, spec)
    if kind == "classes":
        try:
            classes = [int(c) for c in arg.split(",") if c.strip()]
        except ValueError:
            raise SftcError(f"forget spec {spec!r}: classes must be integers, e.g. classes:2,4") from None
        missing = [c for c in classes if c not in set(y.tolist())]
        if missing:
            raise SftcError(f"forget spec {spec!r}: class {missing[0]} has no training samples")
        return np.flatnonzero(np.isin(y, classes))
    if kind == "first":
        count = _int(arg, spec)
        if count < 1:
            raise SftcError(f"forget spec {spec!r}: give a number of rows of at least 1")
        if count > len(y):
            raise SftcError(f"forget spec {spec!r}: asks for {count} rows but the training set has "
                            f"{len(y)}")
        return np.arange(count)
    if kind == "file":
        return read_index_file(Path(arg))
    raise SftcError(f"unknown forget spec {spec!r}; use {SPEC_HELP}")


def _int(text: str, spec: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise SftcError(f"forget spec {spec!r}: {text!r} is not a whole number") from None


def _random_per_class(arg: str, y: np.ndarray, seed: int, spec: str) -> np.ndarray:
    try:
        value = float(arg)
    except ValueError:
        raise SftcError(f"forget spec {spec!r}: {arg!r} is not a number") from None
    if not (0 < value < 1 or (value >= 1 and value.is_integer())):
        raise SftcError(f"forget spec {spec!r}: give a fraction in (0, 1) or a whole count per class")
    if value >= 1 and not arg.strip().isdigit():   # 1.0 or 1e3: a fraction of 100 %, or a count?
        raise SftcError(f"forget spec {spec!r} is ambiguous: a fraction is below 1 (random:0.1) "
                        f"and a count per class is a whole number without a point "
                        f"(random:{int(value)} forgets {int(value)} of each class)")
    rng = np.random.default_rng(check_seed(seed))
    chosen = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        k = int(round(value * len(members))) if value < 1 else int(value)
        if k > len(members):
            raise SftcError(f"forget spec {spec!r}: class {int(c)} has only {len(members)} samples")
        chosen.append(rng.choice(members, size=k, replace=False))
    return np.sort(np.concatenate(chosen))


def read_index_file(path: Path) -> np.ndarray:
    """Read forget indices from ``.npy``, ``.json`` (a list, or {"forget": [...]}) or text."""
    if not path.is_file():
        raise SftcError(f"forget index file {path} does not exist; give a .npy, .txt or .json file "
                        "of indices into the training set")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".json":
            obj = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(obj, dict):
                obj = obj.get("forget", obj.get("indices"))
            if not isinstance(obj, list):
                raise SftcError(f"{path}: expected a JSON list of indices (or {{\"forget\": [...]}})")
            if any(isinstance(v, (list, dict)) for v in obj):
                raise SftcError(f"{path}: forget indices must be a flat list of whole numbers")
            if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in obj):
                bad = next(v for v in obj if isinstance(v, bool) or not isinstance(v, (int, float)))
                raise SftcError(f"{path}: forget indices must be whole numbers, found {bad!r}")
            if any(isinstance(v, int) and abs(v) >= 2 ** 62 for v in obj):
                big = next(v for v in obj if isinstance(v, int) and abs(v) >= 2 ** 62)
                raise SftcError(f"{path}: forget index {big} is out of range")
            return np.asarray(obj)
        rows = [line.split("#")[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
        values = []
        for lineno, row in enumerate(rows, 1):
            for token in row.replace(",", " ").split():
                if not (token.isascii() and token.lstrip("-").isdigit()):
                    raise SftcError(f"{path}:{lineno}: {token!r} is not an integer index")
                values.append(int(token))
        if any(abs(v) >= 2 ** 62 for v in values):
            raise SftcError(f"{path}: forget index {next(v for v in values if abs(v) >= 2 ** 62)} "
                            "is out of range")
        return np.asarray(values, dtype=np.int64)
    except SftcError:
        raise
    except Exception as exc:  # a corrupt .npy, an object array, bad JSON or encoding, ...
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SftcError(f"cannot read forget index file {path}: {reason}") from None


def read_path_list(path: Path, names: list[str], where: str,
                   aliases: tuple[str, ...] = ()) -> np.ndarray:
    """Map a text file of relative image paths (one per line) to positions in ``names``.

    ``names`` are the training samples' paths relative to the training folder, in training order;
    ``where`` describes that folder for messages. Blank lines and lines starting with ``#`` are
    ignored; ``\\`` and a leading ``./`` are accepted, and so is a path that starts with one of
    ``aliases`` (e.g. ``train/``, the training folder's own name). A path that is not a training
    image, or one listed twice, is a one-line error naming the file and the line.
    """
    if not path.is_file():
        raise SftcError(f"forget list {path} does not exist; give a text file of image paths "
                        f"relative to {where}, one per line")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SftcError(f"cannot read forget list {path}: {exc}") from None
    entries = [(f"{path}:{lineno}", raw.strip()) for lineno, raw in enumerate(lines, 1)
               if raw.strip() and not raw.strip().startswith("#")]
    return name_positions(entries, names, where, aliases)


def name_positions(entries: list[tuple[str, str]], names: list[str], where: str,
                   aliases: tuple[str, ...] = ()) -> np.ndarray:
    """Positions in ``names`` of ``entries`` ((where each was given, name) pairs): sample ids
    such as relative image paths. ``\\`` and a leading ``./`` are accepted, and a path that
    starts with one of ``aliases``. An unknown or repeated name is one line naming it."""
    import posixpath

    position = {name: i for i, name in enumerate(names)}
    seen: dict[int, str] = {}
    out = []
    for origin, entry in entries:
        key = posixpath.normpath(str(entry).replace("\\", "/"))
        if key not in position:
            for alias in aliases:
                if key.startswith(alias.rstrip("/") + "/"):
                    key = key[len(alias.rstrip("/")) + 1:]
                    break
        if key not in position:
            if "rows" in where:         # a table: the row may be in another split
                missing = [e for _, e in entries if posixpath.normpath(str(e)) not in position]
                listed = ", ".join(repr(m) for m in missing[:3]) + (", …" if len(missing) > 3
                                                                     else "")
                raise SftcError(f"{origin}: {entry!r} is not one of {where}: {len(missing)} of "
                                f"the {len(entries)} listed ids are not ({listed}); only training "
                                "rows can be forgotten (the validation and test rows, drawn by "
                                "--split-seed, were never trained on): leave those out")
            raise SftcError(f"{origin}: {entry!r} is not an image in {where}")
        pos = position[key]
        if pos in seen:
            first = seen[pos].rsplit(":", 1)[-1]
            where_first = f" (first listed on line {first})" if first.isdigit() else ""
            raise SftcError(f"{origin}: {entry!r} is repeated{where_first}; list each image once")
        seen[pos] = origin
        out.append(pos)
    return np.asarray(out, dtype=np.int64)


def map_rows(rows: np.ndarray, kept_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Translate row numbers of the original training file into positions among the rows that
    loaded (``kept_rows``, sorted). Returns ``(positions, rows_not_loaded)``."""
    rows = np.asarray(rows, dtype=np.int64)
    kept_rows = np.asarray(kept_rows, dtype=np.int64)
    at = np.searchsorted(kept_rows, rows)
    found = (at < len(kept_rows)) & (kept_rows[np.minimum(at, len(kept_rows) - 1)] == rows)
    return at[found], rows[~found]
