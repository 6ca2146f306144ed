"""The invariants of issue #3, one test each: frozen layers stay bit-identical (CF-k), unfrozen ones
are re-initialised (EU-k), no method changes its teachers, SCRUB maximises only in the first
``msteps`` epochs, NegGrad+ pairs every step with a new retain batch, FT/CF-k/EU-k/retrain never
load a forget sample, and frozen models run only on the samples whose outputs are read."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import sftc
from sftc.engine import Recipe, RunContext, run
from sftc.engine import inference
from sftc.methods import create_method, method_class
from sftc.methods.cf_eu_k import split_layers
from sftc.models import layer_sequence


def model_for(split, arch="small-cnn", seed=1):
    return sftc.build_model(arch, split.data.channels, split.data.num_classes, seed=seed)


def hparams_for(name: str, **extra) -> dict:
    return {**({"k": 1} if "k" in method_class(name).hparams else {}), **extra}


def fresh_factory(split, arch="small-cnn"):
    return lambda seed: sftc.build_model(arch, split.data.channels, split.data.num_classes, seed=seed)


def run_method(method, split, epochs=1, batch_size=32, arch="small-cnn", model=None, **recipe):
    model = model if model is not None else model_for(split, arch)
    return run(method, model, split, Recipe(epochs=epochs, lr=1e-3, batch_size=batch_size,
                                            scheduler="constant", device="cpu", **recipe),
               progress=False, fresh_model=fresh_factory(split, arch))


def record_losses(method):
    """Wrap ``method.loss`` to record (epoch, phase, dataset indices, flags) of every step."""
    seen = []
    loss = method.loss

    def recording(ctx, batch, logits):
        flag = batch.flag.cpu() if batch.flag is not None else None
        seen.append((ctx.epoch, batch.phase, batch.index.cpu(), flag))
        return loss(ctx, batch, logits)

    method.loss = recording
    return seen


# --- CF-k / EU-k ---------------------------------------------------------------------------------

def test_layers_of_each_supported_model():
    resnet = sftc.build_model("resnet18", 1, 4)
    frozen, rest = split_layers(resnet, 5, "cf-k")
    assert [n for n, _ in frozen] == ["conv1", "bn1", "relu", "maxpool", "layer1"]
    assert [n for n, _ in rest] == ["layer2", "layer3", "layer4", "avgpool", "fc"]
    effnet = sftc.build_model("efficientnet_b0", 1, 4)
    names = [n for n, _ in layer_sequence(effnet)]
    assert names == [f"features.{i}" for i in range(9)] + ["avgpool", "classifier"]
    assert [n for n, _ in split_layers(effnet, 5, "cf-k")[0]] == [f"features.{i}" for i in range(5)]
    cnn = sftc.build_model("small-cnn", 1, 4)
    assert [n for n, _ in layer_sequence(cnn)] == ["stage1", "stage2", "stage3", "head"]


@pytest.mark.parametrize("name", ["cf-k", "eu-k"])
@pytest.mark.parametrize("k", [4, 5])
def test_k_that_leaves_nothing_to_train_is_refused(name, k, tiny_split):
    with pytest.raises(sftc.SftcError, match=r"k=\d leaves nothing to train: SmallCNN has 4 layers "
                                             r"\(stage1, stage2, stage3, head\); use --k between 0 "
                                             r"and 3"):
        sftc.unlearn(model_for(tiny_split), tiny_split, name, k=k, epochs=1, device="cpu",
                     progress=False)


def test_cf_k_frozen_layers_are_bit_identical_afterwards(tiny_split):
    """ResNet-18 with the paper's k = 5: conv1, bn1, relu, maxpool, layer1 frozen, batch-norm
    running statistics included; the rest is trained."""
    model = model_for(tiny_split, "resnet18")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    method = create_method("cf-k")
    assert method.label == "CF-5"
    result, _ = run_method(method, tiny_split, epochs=2, arch="resnet18", model=model)
    frozen = ("conv1.", "bn1.", "layer1.")
    after = result.state_dict()
    for key, value in after.items():
        if key.startswith(frozen):
            assert torch.equal(value, before[key]), f"frozen {key} changed"
    trained = [k for k in after if k.startswith(("layer2.", "layer3.", "layer4.", "fc."))
               and after[k].dtype.is_floating_point and not torch.equal(after[k], before[k])]
    assert trained, "the unfrozen layers were not trained"
    assert all(not p.requires_grad for n, p in result.named_parameters() if n.startswith(frozen))


def as_if_trained(model):
    """Move every float parameter and buffer off its initial value (BN weights included)."""
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for value in model.state_dict().values():
            if value.dtype.is_floating_point:
                value.add_(0.1 * torch.randn(value.shape, generator=g) + 0.05)
    return model


def test_eu_k_reinitialises_the_unfrozen_layers(tiny_split):
    original = as_if_trained(model_for(tiny_split, seed=1))
    method = create_method("eu-k", k=1, init_seed=7)
    assert method.label == "EU-1"
    result, _ = run_method(method, tiny_split, epochs=0, model=original)  # setup only
    fresh = sftc.build_model("small-cnn", 1, 4, seed=7).state_dict()
    for key, value in result.state_dict().items():
        if key.startswith("stage1."):
            assert torch.equal(value, original.state_dict()[key]), f"kept {key} changed"
        else:
            assert torch.equal(value, fresh[key]), f"{key} was not re-initialised"
            if value.dtype.is_floating_point:  # BN weights and running statistics too
                assert not torch.equal(value, original.state_dict()[key]), key
    # and after training, the kept layer is still the original's, bit for bit
    trained, _ = run_method(create_method("eu-k", k=1, init_seed=7), tiny_split, epochs=1,
                            model=original)
    for key, value in trained.state_dict().items():
        if key.startswith("stage1."):
            assert torch.equal(value, original.state_dict()[key])


def test_eu_k_without_a_model_name_reinitialises_with_reset_parameters(tiny_split):
    original = model_for(tiny_split, seed=1)
    result, _ = run(create_method("eu-k", k=3), original, tiny_split,
                    Recipe(epochs=0, device="cpu"), progress=False)  # no fresh_model factory
    assert not torch.equal(result.head.weight, original.head.weight)
    assert torch.equal(result.stage3[0].weight, original.stage3[0].weight)


# --- teachers ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sftc.list_methods())
def test_no_method_changes_a_teacher(name, tiny_split, monkeypatch):
    """Every frozen copy (the original teacher, Bad-Teaching's incompetent teacher) is bit-identical
    after the run and never requires gradients."""
    copies = []
    frozen_copy = RunContext.frozen_copy

    def recording(self, model=None):
        teacher = frozen_copy(self, model)
        copies.append((teacher, {k: v.clone() for k, v in teacher.state_dict().items()}))
        return teacher

    monkeypatch.setattr(RunContext, "frozen_copy", recording)
    model = model_for(tiny_split)
    caller = {k: v.clone() for k, v in model.state_dict().items()}
    method = create_method(name, **hparams_for(name))
    run_method(method, tiny_split, epochs=2, model=model, augment=True)  # teachers run per batch
    # the caller's model is never touched, teacher or not
    assert all(torch.equal(v, caller[k]) for k, v in model.state_dict().items())
    expected = {"bad-teaching": 2}.get(name, 1 if method.needs_original else 0)
    assert len(copies) == expected, f"{name} made {len(copies)} frozen copies"
    if method.needs_original:
        assert all(torch.equal(v, model.state_dict()[k])
                   for k, v in copies[0][0].state_dict().items())
    for teacher, snapshot in copies:
        assert all(torch.equal(v, snapshot[k]) for k, v in teacher.state_dict().items())
        assert not any(p.requires_grad for p in teacher.parameters())
        assert not teacher.training


@pytest.mark.parametrize("name, hparams, expected", [
    ("sftc", {}, {"original": "retain"}),
    ("bad-teaching", {}, {"original": "retain", "other": "forget"}),
    ("scrub", {}, {"original": "both"}),
    ("scrub", {"alpha": 0.0}, {"original": "forget"}),
    ("scrub", {"msteps": 0}, {"original": "retain"}),
])
def test_frozen_models_run_only_on_samples_whose_outputs_are_read(name, hparams, expected,
                                                                  tiny_split, monkeypatch):
    calls = []
    predict = inference.predict_logits

    def recording(model, data, index, device, batch_size=512, **kwargs):
        calls.append((model, set(index.tolist())))
        return predict(model, data, index, device, batch_size, **kwargs)

    monkeypatch.setattr(inference, "predict_logits", recording)
    model = model_for(tiny_split)
    run_method(create_method(name, **hparams), tiny_split, epochs=2, model=model)
    retain, forget = set(tiny_split.retain.tolist()), set(tiny_split.forget.tolist())
    wanted = {"retain": retain, "forget": forget, "both": retain | forget}
    originals = [ix for m, ix in calls if all(torch.equal(a, b) for a, b in
                                              zip(m.state_dict().values(), model.state_dict().values()))]
    others = [ix for m, ix in calls if all(ix is not o for o in originals)]
    assert originals == [wanted[expected["original"]]]  # once, in setup, on exactly those samples
    assert others == ([wanted[expected["other"]]] if "other" in expected else [])


# --- SCRUB ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("msteps", [0, 1, 2, 5])
def test_scrub_max_steps_run_only_in_the_first_msteps_epochs(msteps, tiny_split):
    method = create_method("scrub", msteps=msteps)
    seen = record_losses(method)
    _, history = run_method(method, tiny_split, epochs=3, batch_size=8)
    retain, forget = set(tiny_split.retain.tolist()), set(tiny_split.forget.tolist())
    for epoch in (1, 2, 3):
        steps = [(phase, set(ix.tolist())) for e, phase, ix, _ in seen if e == epoch]
        phases = [p for p, _ in steps]
        maxed = [ix for p, ix in steps if p == "max"]
        mins = [ix for p, ix in steps if p == "min"]
        assert set().union(*mins) == retain and sum(map(len, mins)) == len(retain)
        if epoch <= msteps:
            assert set().union(*maxed) == forget and sum(map(len, maxed)) == len(forget)
            assert phases == sorted(phases)  # "max" pass first, then "min"
        else:
            assert not maxed, f"max-step in epoch {epoch} with msteps={msteps}"
        assert history.rows[epoch - 1]["steps"] == len(steps)


def test_scrub_losses_move_away_on_forget_and_toward_the_teacher_on_retain(tiny_split):
    method = create_method("scrub", alpha=0.5, gamma=0.25, tau=2.0)
    seen = record_losses(method)
    losses = []
    inner = method.loss

    def keep(ctx, batch, logits):
        value = inner(ctx, batch, logits)
        teacher = ctx.original(batch.x).float()
        kl = F.kl_div(F.log_softmax(logits / 2, 1), F.softmax(teacher / 2, 1),
                      reduction="batchmean") * 4
        want = -kl if batch.phase == "max" else 0.25 * F.cross_entropy(logits, batch.y) + 0.5 * kl
        losses.append((float(value.detach()), float(want.detach())))
        return value

    method.loss = keep
    run_method(method, tiny_split, epochs=1, batch_size=16)
    assert seen and all(abs(a - b) < 1e-4 for a, b in losses)


# --- NegGrad+ ------------------------------------------------------------------------------------

def test_neggrad_plus_draws_a_different_retain_batch_each_step(tiny_split):
    method = create_method("neggrad+")
    seen = record_losses(method)
    run_method(method, tiny_split, epochs=3, batch_size=8)
    retain, forget = set(tiny_split.retain.tolist()), set(tiny_split.forget.tolist())
    n_steps = -(-len(forget) // 8)
    assert len(seen) == 3 * n_steps  # an epoch is one pass over the forget set
    drawn = []
    for epoch in (1, 2, 3):
        steps = [(ix, flag) for e, _, ix, flag in seen if e == epoch]
        forget_rows = [ix[flag == 1].tolist() for ix, flag in steps]
        assert sorted(sum(forget_rows, [])) == sorted(forget)  # each forget sample once
        for ix, flag in steps:
            part = ix[flag == 0].tolist()
            assert len(part) == 8 and set(part) <= retain
            drawn.append(part)
    # 9 steps x 8 = 72 draws from 80 retain samples: no sample repeats, so no batch repeats
    flat = sum(drawn, [])
    assert len(set(flat)) == len(flat)
    assert len({tuple(sorted(b)) for b in drawn}) == len(drawn)


def test_neggrad_plus_loss_is_retain_ce_minus_forget_ce(tiny_split):
    method = create_method("neggrad+", forget_weight=0.5)
    checks = []
    inner = method.loss

    def keep(ctx, batch, logits):
        value = inner(ctx, batch, logits)
        r, f = batch.flag == 0, batch.flag == 1
        want = F.cross_entropy(logits[r], batch.y[r]) - 0.5 * F.cross_entropy(logits[f], batch.y[f])
        checks.append(abs(float(value.detach()) - float(want.detach())))
        return value

    method.loss = keep
    run_method(method, tiny_split, epochs=1, batch_size=8)
    assert checks and max(checks) < 1e-5


def test_neggrad_reads_the_forget_set_only(tiny_split):
    method = create_method("neggrad")
    seen = record_losses(method)
    run_method(method, tiny_split, epochs=1, batch_size=8)
    loaded = set(torch.cat([ix for _, _, ix, _ in seen]).tolist())
    assert loaded == set(tiny_split.forget.tolist())


# --- methods that must not see the forget set ----------------------------------------------------

@pytest.mark.parametrize("name", [n for n in sftc.list_methods() if not method_class(n).sees_forget])
def test_methods_without_forget_access_never_load_a_forget_sample(name, tiny_split, monkeypatch):
    loaded = []
    batch = tiny_split.data.batch

    def recording(index, device, *args, **kwargs):
        loaded.append(index.cpu())
        return batch(index, device, *args, **kwargs)

    monkeypatch.setattr(tiny_split.data, "batch", recording)
    run_method(create_method(name, **hparams_for(name)), tiny_split, epochs=2, batch_size=16)
    seen = set(torch.cat(loaded).tolist())
    assert seen == set(tiny_split.retain.tolist())
    assert not seen & set(tiny_split.forget.tolist())


def test_ft_retrain_and_cf_eu_k_are_the_methods_that_never_see_forget():
    blind = {n for n in sftc.list_methods() if not method_class(n).sees_forget}
    assert {"ft", "retrain", "cf-k", "eu-k"} <= blind
    assert not blind & {"neggrad+", "neggrad", "bad-teaching", "scrub", "sftc"}


def test_retrain_returns_a_new_model(tiny_split):
    original = model_for(tiny_split, seed=1)
    fresh_factory = lambda seed: sftc.build_model("small-cnn", 1, 4, seed=seed)  # noqa: E731
    model, _ = run(create_method("retrain", init_seed=3), original, tiny_split,
                   Recipe(epochs=0, device="cpu"), progress=False, fresh_model=fresh_factory)
    fresh = sftc.build_model("small-cnn", 1, 4, seed=3).state_dict()
    assert all(torch.equal(v, fresh[k]) for k, v in model.state_dict().items())
    result = sftc.unlearn(original, tiny_split, "retrain", epochs=1, init_seed=3, device="cpu",
                          progress=False, model_name="small-cnn")
    assert result.config["scheduler"] == "cosine"  # the original model's recipe


def test_bad_teaching_loss_is_the_batch_mean_kl_to_both_teachers(tiny_split):
    """BD's loss on a mixed batch against KL computed here from the two teachers run directly:
    the original model on retain rows, the freshly initialised one on forget rows."""
    from sftc.engine import Batch
    from sftc.engine.context import reinitialised

    tau = 2.0
    model = model_for(tiny_split, seed=2)
    ctx = RunContext(model=model, split=tiny_split, device=torch.device("cpu"), batch_size=32,
                     augment=False, generator=torch.Generator().manual_seed(0))
    ctx.original = ctx.frozen_copy(model)
    method = create_method("bad-teaching", tau=tau, init_seed=5)
    method.setup(ctx)
    good = model_for(tiny_split, seed=2).eval()
    bad = reinitialised(model_for(tiny_split, seed=2), 5).eval()
    mixed = [p for p in method.plan(ctx, 1) if 0 < int(p.flag.sum()) < len(p.index)]
    assert mixed
    for plan in mixed:
        x, y = tiny_split.data.batch(plan.index, "cpu")
        logits = model(x)
        batch = Batch(x, y, plan.index, plan.flag, plan.phase, int(plan.flag.sum()))
        with torch.no_grad():
            target_logits = torch.where(plan.flag.bool().unsqueeze(1), bad(x), good(x))
        target = F.softmax(target_logits / tau, dim=1)
        log_student = F.log_softmax(logits / tau, dim=1)
        expected = (target * (target.log() - log_student)).sum() / len(plan.index)
        assert method.loss(ctx, batch, logits).item() == pytest.approx(expected.item(), rel=1e-5)


def test_the_oracle_is_described_by_its_class_and_its_recipe_is_only_a_default(tiny_split):
    from sftc.methods.supervised import Retrain, TrainOnRetain, TrainOriginal

    assert [n for n in sftc.list_methods() if method_class(n).fresh_start] == ["retrain"]
    assert method_class("retrain") is Retrain
    assert "retrain" not in (TrainOnRetain.name, TrainOriginal.name)  # no second "retrain"
    original = model_for(tiny_split, seed=1)

    def config(method, **kwargs):
        return sftc.unlearn(original, tiny_split, method, device="cpu", progress=False,
                            model_name="small-cnn", **kwargs).config

    oracle = config("retrain")                                 # the training recipe by default
    assert (oracle["epochs"], oracle["lr"], oracle["scheduler"]) == (30, 1e-3, "cosine")
    given = config("retrain", epochs=1, lr=5e-4, scheduler="constant")
    assert (given["epochs"], given["lr"], given["scheduler"]) == (1, 5e-4, "constant")  # kept
    ft = config("ft", epochs=1)
    assert (ft["lr"], ft["scheduler"]) == (sftc.api.UNLEARN_LR, "constant")
    for name in sftc.list_methods():                           # every unlearning method: 3, 5e-4
        cls = method_class(name)
        if not cls.fresh_start:
            assert (cls.default_epochs, cls.default_lr, cls.default_scheduler) == \
                (sftc.api.UNLEARN_EPOCHS, sftc.api.UNLEARN_LR, "constant"), name
    assert (sftc.api.TRAIN_EPOCHS, sftc.api.TRAIN_LR) == (Retrain.default_epochs, Retrain.default_lr)
