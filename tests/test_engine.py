"""The engine's batch cutting and run-level guarantees."""
import torch

from sftc.engine.context import cut_batches


def sizes(n, size):
    return [len(b.index) for b in cut_batches(torch.arange(n), None, size)]


def test_batches_cover_every_sample_once_and_never_hold_a_single_sample():
    assert sizes(128, 64) == [64, 64]
    assert sizes(129, 64) == [64, 65]   # a trailing batch of one is folded into the previous one
    assert sizes(130, 64) == [64, 64, 2]
    assert sizes(1, 64) == [1]          # nothing to fold into
    flags = torch.arange(129) % 2
    batches = list(cut_batches(torch.arange(129), flags, 64, "union"))
    assert torch.equal(torch.cat([b.index for b in batches]), torch.arange(129))
    assert torch.equal(torch.cat([b.flag for b in batches]), flags)
    assert {b.phase for b in batches} == {"union"}


def test_frozen_outputs_refuse_a_sample_they_were_not_computed_on(tiny_split):
    import pytest

    import sftc
    from sftc.engine.inference import FrozenOutputs
    from sftc.errors import SftcError

    model = sftc.create_model("small-cnn", in_channels=1, num_classes=4, seed=0)
    outputs = FrozenOutputs(model, tiny_split.data, tiny_split.retain, torch.device("cpu"),
                            cache=True)
    assert outputs(None, tiny_split.retain[:3]).shape == (3, 4)
    with pytest.raises(SftcError, match="1 sample\\(s\\) they were not computed on"):
        outputs(None, torch.cat([tiny_split.retain[:2], tiny_split.forget[:1]]))
