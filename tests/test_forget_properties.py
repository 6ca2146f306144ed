"""Property tests (hypothesis) of forget specifications and the split they carve.

Any valid specification gives a forget set and a retain set that are disjoint and together are the
training set; anything else is an :class:`sftc.SftcError`, never another exception.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sftc
from sftc.data import resolve_forget
from sftc.data.forget import validate_positions
from sftc.data.images import ImageData
from sftc.data.split import Split

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def labels_strategy():
    return st.lists(st.integers(0, 5), min_size=2, max_size=60).map(
        lambda v: torch.tensor(v, dtype=torch.long))


@st.composite
def valid_specs(draw):
    """A training set's labels and a specification that must be accepted for them."""
    labels = draw(labels_strategy())
    n = len(labels)
    counts = torch.bincount(labels)
    present = sorted(int(c) for c in torch.unique(labels))
    kind = draw(st.sampled_from(["fraction", "count", "classes", "first", "indices"]))
    if kind == "first":
        spec = f"first:{draw(st.integers(1, n - 1))}"
    elif kind == "classes" and len(present) > 1:
        chosen = draw(st.lists(st.sampled_from(present), min_size=1, max_size=len(present) - 1,
                               unique=True))
        spec = "classes:" + ",".join(map(str, chosen))
    elif kind == "count" and int(counts[counts > 0].min()) > 1:
        smallest = int(counts[counts > 0].min())
        spec = f"random:{draw(st.integers(1, smallest - 1))}"
    elif kind == "indices":
        spec = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n - 1, unique=True))
    else:
        # a fraction that leaves at least one sample of some class and takes at least one
        value = draw(st.floats(0.01, 0.99))
        taken = sum(int(round(value * int(c))) for c in counts if c > 0)
        if not 0 < taken < n:
            spec = "first:1"
        else:
            spec = f"random:{value}"
    return labels, spec, draw(st.integers(0, 2 ** 32 - 1))


def split_of(labels: torch.Tensor, spec, seed: int) -> Split:
    n = len(labels)
    images = torch.zeros(n + 2, 1, 2, 2, dtype=torch.uint8)
    all_labels = torch.cat([labels, torch.zeros(2, dtype=torch.long)])
    data = ImageData(images, all_labels, int(all_labels.max()) + 1)
    return Split.create(data, torch.arange(n), torch.tensor([n]), torch.tensor([n + 1]), spec,
                        seed=seed)


@SETTINGS
@given(valid_specs())
def test_any_valid_spec_partitions_the_training_set(case):
    labels, spec, seed = case
    split = split_of(labels, spec, seed)
    retain, forget, train = (set(split.retain.tolist()), set(split.forget.tolist()),
                             set(split.train.tolist()))
    assert forget and retain
    assert not retain & forget
    assert retain | forget == train
    assert len(split.retain) + len(split.forget) == len(split.train)
    assert torch.equal(split.forget, torch.sort(split.forget).values)
    again = split_of(labels, spec, seed)        # the same seed gives the same forget set
    assert torch.equal(again.forget, split.forget)


JUNK = st.one_of(
    st.text(max_size=30),
    st.builds(lambda k, a: f"{k}:{a}", st.sampled_from(["random", "classes", "first", "file",
                                                        "RANDOM", "nope", ""]),
              st.text(max_size=20)),
    st.builds(lambda v: f"random:{v}", st.floats(allow_nan=True, allow_infinity=True)),
    st.builds(lambda v: f"first:{v}", st.integers(-10 ** 20, 10 ** 20)),
)


@SETTINGS
@given(labels_strategy(), JUNK, st.integers(-5, 2 ** 40))
@pytest.mark.slow
def test_any_spec_string_is_accepted_or_an_sftc_error(labels, spec, seed):
    try:
        positions = resolve_forget(spec, labels, seed=seed)
    except sftc.SftcError as err:
        assert str(err) and "\n" not in str(err)
        return
    assert 0 < len(positions) < len(labels)
    assert positions.min() >= 0 and positions.max() < len(labels)


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10 ** 25, 10 ** 25),
              st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5)),
    lambda inner: st.lists(inner, max_size=4), max_leaves=12)


@SETTINGS
@given(st.lists(JSON_VALUES, max_size=12), st.integers(2, 50))
def test_any_list_of_indices_is_accepted_or_an_sftc_error(values, n_train):
    try:
        positions = validate_positions(values, n_train, "the list")
    except sftc.SftcError as err:
        assert "\n" not in str(err)
        return
    assert 0 < len(positions) < n_train
    assert positions.dtype == torch.int64


@SETTINGS
@given(st.lists(JSON_VALUES, max_size=8))
def test_any_json_forget_file_is_read_or_an_sftc_error(tmp_path_factory, values):
    from pathlib import Path

    from sftc.data.forget import read_index_file

    path = Path(tmp_path_factory.mktemp("json")) / "forget.json"
    path.write_text(json.dumps(values))
    try:
        validate_positions(read_index_file(path), 40, str(path))
    except sftc.SftcError:
        pass


@SETTINGS
@given(st.binary(max_size=64), st.sampled_from([".npy", ".json", ".txt"]))
def test_any_bytes_as_a_forget_file_are_read_or_an_sftc_error(tmp_path_factory, blob, suffix):
    from pathlib import Path

    from sftc.data.forget import read_index_file

    path = Path(tmp_path_factory.mktemp("bytes")) / f"forget{suffix}"
    path.write_bytes(blob)
    try:
        validate_positions(read_index_file(path), 40, str(path))
    except sftc.SftcError:
        pass


def test_a_boolean_mask_is_a_forget_set():
    mask = np.zeros(10, dtype=bool)
    mask[[1, 4]] = True
    assert validate_positions(mask, 10, "mask").tolist() == [1, 4]
