"""Every speed optimisation of the engine gives the plain path's results up to float rounding.

(Whether the choices are reproducible, and measure mode: tests/test_determinism.py.)"""
import copy
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import sftc
from sftc.engine import Accel
from sftc.engine import linear_conv as L
from sftc.engine.inference import predict_logits
from sftc.engine.inference_model import InferenceModel, fold_batch_norm

ONLY = {"channels_last": "off", "linear_convs": "off", "fused_optimizer": "off", "fold_bn": "off",
        "exact_rewrites": "off"}


def only(**on) -> dict:
    return {**ONLY, **on}


def losses(result):
    return [row["loss"] for row in result.history.rows]


def assert_same_run(a, b, split, tol=1e-5):
    """Same loss trajectory to ``tol`` (relative), and the same model up to Adam's float tolerance.

    Two runs whose gradients differ by rounding alone (the plain path run twice is bitwise equal)
    do not end with bitwise-equal weights: Adam normalises each update, so a weight whose gradient
    is at the level of rounding noise moves by up to one learning rate either way per step. Checked
    instead: every weight within a few learning rates, and the logits on the training samples
    within 1 % (relative norm) with the same predicted class on 99 % of them."""
    assert losses(a) == pytest.approx(losses(b), rel=tol, abs=tol)
    lr = a.config["lr"]
    for (name, p), q in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        if p.is_floating_point():
            assert torch.allclose(p, q, rtol=1e-2, atol=5 * lr), (name, (p - q).abs().max())
    x, _ = split.data.batch(split.train, "cpu")
    with torch.no_grad():
        la, lb = a.model(x), b.model(x)
    assert ((la - lb).norm() / lb.norm()).item() < 1e-2
    assert (la.argmax(1) == lb.argmax(1)).float().mean().item() > 0.99


@pytest.fixture(scope="module")
def fine_split():
    """digits at 4x4 pixels, so that the small CNN's last convolution sees a 1x1 input."""
    return sftc.load_split("digits", "random:0.1", seed=0, image_size=4)


def unlearn(model, split, accel, method="sftc", **kw):
    return sftc.unlearn(model, split, method, epochs=2, device="cpu", progress=False,
                        accel=accel, **kw)


@pytest.mark.parametrize("switch", ["channels_last", "fused_optimizer"])
@pytest.mark.slow
def test_each_step_optimisation_keeps_the_loss_trajectory(switch, digits_split, digits_original):
    plain = unlearn(digits_original.model, digits_split, "off")
    fast = unlearn(digits_original.model, digits_split, only(**{switch: "on"}))
    assert fast.history.accel["train"][switch] is True
    assert_same_run(fast, plain, digits_split)


def test_the_rule_keeps_the_loss_trajectory_and_is_recorded(digits_split, digits_original):
    plain = unlearn(digits_original.model, digits_split, "off")
    fast = unlearn(digits_original.model, digits_split, None)
    train = fast.history.accel["train"]
    assert fast.history.accel["mode"] == "rule" and train["decided_by"] == "rule"
    # the rule on the CPU for the small CNN: channels-last, fused Adam (no 1x1-output convs)
    assert train["channels_last"] is True and train["fused_optimizer"] is True
    assert train["linear_convs"] == [] and train["seconds"] == 0.0
    teacher = fast.history.accel["inference"][0]
    assert (teacher["fold_bn"], teacher["channels_last"], teacher["batch"]) == ("fx", True, 256)
    assert fast.config["accel"]["channels_last"] == "auto"
    assert_same_run(fast, plain, digits_split, tol=1e-4)


def test_linear_convolutions_equal_the_convolution_in_value_and_gradient():
    torch.manual_seed(0)
    cases = [  # (kernel, stride, padding, input size)
        (3, 1, 1, 1), (3, 2, 1, 2), (1, 2, 0, 2), (3, 1, 0, 3), (5, 1, 2, 1), (3, 2, 1, 1),
        (2, 2, 0, 2)]
    for k, s, p, size in cases:
        conv = nn.Conv2d(6, 5, k, stride=s, padding=p, bias=True).double()
        plan = L.linear_conv_plan(conv, (size, size))
        assert plan is not None, (k, s, p, size)
        fast = copy.deepcopy(conv)
        L.patch_linear_conv(fast, plan)
        x = torch.randn(4, 6, size, size, dtype=torch.float64, requires_grad=True)
        x2 = x.detach().clone().requires_grad_()
        ref, out = conv(x), fast(x2)
        assert out.shape == ref.shape == (4, 5, 1, 1)
        assert torch.allclose(out, ref)
        g = torch.randn_like(ref)
        ref.backward(g)
        out.backward(g)
        assert torch.allclose(x.grad, x2.grad)
        assert torch.allclose(conv.weight.grad, fast.weight.grad)
        assert torch.allclose(conv.bias.grad, fast.bias.grad)
        # another input size runs the ordinary convolution
        y = torch.randn(2, 6, size + 3, size + 3, dtype=torch.float64)
        assert torch.allclose(fast(y), conv(y))
        # a patched convolution pickles (torch.save of a whole model), and unpatches
        with torch.no_grad():
            assert torch.equal(pickle.loads(pickle.dumps(fast))(x), fast(x))
        L.unpatch_linear_convs(fast)
        assert type(fast) is nn.Conv2d and "_sftc_linear_plan" not in fast.__dict__
    assert L.linear_conv_plan(nn.Conv2d(4, 4, 3, padding=1), (2, 2)) is None  # 2x2 output
    assert L.linear_conv_plan(nn.Conv2d(4, 4, 3, padding=1, groups=2), (1, 1)) is None
    assert L.linear_conv_plan(nn.Conv2d(4, 4, 3, padding=1, dilation=2), (1, 1)) is None


def test_a_linear_convolution_before_an_in_place_activation_keeps_its_gradients():
    """EfficientNet's squeeze-excitation: 1x1 convolutions on a pooled 1x1 map, the first one
    followed by SiLU(inplace=True), which must not modify a view made inside the autograd op."""
    torch.manual_seed(0)
    block = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(8, 4, 1), nn.SiLU(inplace=True),
                          nn.Conv2d(4, 8, 1)).double()
    fast = copy.deepcopy(block)
    x = torch.randn(5, 8, 6, 6, dtype=torch.float64)
    candidates = L.linear_conv_candidates(fast, x)
    assert sorted(candidates) == ["1", "3"]
    for name, (plan, _) in candidates.items():
        L.patch_linear_conv(dict(fast.named_modules())[name], plan)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    a, b = block(x1), fast(x2)
    assert torch.allclose(a, b)
    a.pow(2).sum().backward()
    b.pow(2).sum().backward()
    assert torch.allclose(x1.grad, x2.grad)
    for p, q in zip(block.parameters(), fast.parameters()):
        assert torch.allclose(p.grad, q.grad)


def test_linear_convolutions_in_a_run_keep_the_loss_trajectory(fine_split):
    model = sftc.train(fine_split, "small-cnn", epochs=3, device="cpu", progress=False,
                       accel="off").model
    x, _ = fine_split.data.batch(fine_split.retain[:8], "cpu")
    assert list(L.linear_conv_candidates(model, x)) == ["stage3.0"]  # 3x3 conv on a 1x1 input
    plain = unlearn(model, fine_split, "off")
    fast = unlearn(model, fine_split, only(linear_convs="on"))
    assert fast.history.accel["train"]["linear_convs"] == ["stage3.0"]
    assert_same_run(fast, plain, fine_split)
    # the returned model is an ordinary one: no patched forward, contiguous weights
    assert "forward" not in fast.model.stage3[0].__dict__
    assert all(p.is_contiguous() for p in fast.model.parameters())


def test_folded_teacher_logits_equal_the_unfolded(digits_split, digits_original):
    model, data = digits_original.model, digits_split.data
    index = digits_split.retain
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plain = predict_logits(model, data, index, torch.device("cpu"))
    record = {}
    fast = predict_logits(model, data, index, torch.device("cpu"), accel=Accel(), record=record)
    assert record["fold_bn"] == "fx"
    assert torch.allclose(fast, plain, atol=1e-5, rtol=1e-5)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # untouched
    assert model.stage1[1].__class__ is nn.BatchNorm2d


def test_the_teacher_pass_takes_the_rule_and_gives_the_plain_logits(digits_original):
    model = digits_original.model
    x = torch.randn(2000, 1, 8, 8)
    fast = InferenceModel(model, x[:2], Accel(), rows=len(x))
    assert (fast.record["channels_last"], fast.record["batch"]) == (True, 256)
    out = fast.predict(lambda idx: x[idx], torch.arange(len(x)), 10)
    with torch.no_grad():
        assert torch.allclose(out, model.eval()(x), atol=1e-5)
    # a pass over fewer rows than it takes to pay for a copy runs the model itself
    short = InferenceModel(model, x[:2], Accel(), rows=100)
    assert short.model is model and short.record["fold_bn"] == "none"
    assert short.record["batch"] == 512
    forced = InferenceModel(model, x[:2], Accel(channels_last="off", inference_batch=64),
                            rows=len(x))
    assert (forced.record["channels_last"], forced.record["batch"]) == (False, 64)


@pytest.mark.slow
def test_folded_resnet18_logits_equal_the_unfolded():
    model = sftc.build_model("resnet18", 1, 10, seed=0)
    # non-trivial batch-norm statistics, as after training
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    model.eval()
    x = torch.randn(8, 1, 28, 28)
    with torch.no_grad():
        ref = model(x)
    fast = InferenceModel(model, x, Accel(linear_convs="on"))
    assert fast.record["fold_bn"] == "fx" and "layer4.1.conv2" in fast.record["linear_convs"]
    out = fast.predict(lambda idx: x[idx], torch.arange(8), 10)
    assert torch.allclose(out, ref, atol=1e-5, rtol=1e-4)


def test_sequential_fallback_folds_pairs_inside_sequentials():
    class Untraceable(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU())
            self.head = nn.Linear(4, 3)

        def forward(self, x):
            if x.sum() > float("inf"):  # data-dependent control flow: torch.fx cannot trace it
                return x
            return self.head(self.body(x).mean((2, 3)))

    model = Untraceable().eval()
    model.body[1].running_mean.uniform_(-1, 1)
    folded, how = fold_batch_norm(model)
    assert how == "sequential" and isinstance(folded.body[1], nn.Identity)
    x = torch.randn(5, 1, 6, 6)
    assert torch.allclose(folded(x), model(x), atol=1e-6)
    assert isinstance(model.body[1], nn.BatchNorm2d)


def test_environment_switch_and_validation(monkeypatch, tiny_split, tmp_path):
    assert Accel.parse(None, {"SFTC_ACCEL": "off"}) == Accel.plain()
    assert Accel.parse("auto", {}) == Accel() == Accel.parse(None, {"SFTC_ACCEL": "rule"})
    measured = Accel.parse(None, {"SFTC_ACCEL": "measure", "SFTC_CACHE_DIR": str(tmp_path)})
    assert measured.mode == "measure" and measured.decisions_dir == str(tmp_path / "accel")
    with pytest.raises(sftc.SftcError, match="SFTC_ACCEL='fast' is not a speed mode"):
        Accel.parse(None, {"SFTC_ACCEL": "fast"})
    monkeypatch.setenv("SFTC_ACCEL", "off")   # read by the API when a call names no options
    model = sftc.build_model("small-cnn", 1, 4, seed=0)
    result = unlearn(model, tiny_split, None)
    assert result.history.accel["train"]["channels_last"] is False
    assert result.history.accel["inference"][0]["fold_bn"] == "none"
    with pytest.raises(sftc.SftcError, match="channels_last must be one of"):
        unlearn(model, tiny_split, {"channels_last": "maybe"})
    with pytest.raises(sftc.SftcError, match="autocast must be off or bf16"):
        unlearn(model, tiny_split, {"autocast": "fp8"})
    with pytest.raises(sftc.SftcError, match="mode must be rule or measure"):
        unlearn(model, tiny_split, {"mode": "guess"})
    with pytest.raises(sftc.SftcError, match="unknown accel option.s. fused; the options are "
                                             "channels_last, linear_convs"):
        unlearn(model, tiny_split, {"fused": "on"})


def test_bf16_autocast_runs_on_the_cpu_and_is_recorded(tiny_split):
    model = sftc.build_model("small-cnn", 1, 4, seed=0)
    plain = unlearn(model, tiny_split, "off")
    bf16 = unlearn(model, tiny_split, {**ONLY, "autocast": "bf16"})
    assert bf16.history.accel["train"]["autocast"] == "bf16"
    assert all(p.dtype == torch.float32 for p in bf16.model.parameters())
    # bfloat16 keeps ~3 significant digits: close to the plain run, not equal to it
    assert losses(bf16) == pytest.approx(losses(plain), rel=5e-2)


def test_cross_entropy_matches_between_layouts_on_one_batch():
    """The smallest case: one forward/backward in each layout."""
    torch.manual_seed(0)
    model = sftc.build_model("small-cnn", 1, 10, seed=0)
    cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    x, y = torch.randn(16, 1, 12, 12), torch.randint(0, 10, (16,))
    a = F.cross_entropy(model(x), y)
    b = F.cross_entropy(cl(x.contiguous(memory_format=torch.channels_last)), y)
    a.backward()
    b.backward()
    assert a.item() == pytest.approx(b.item(), rel=1e-6)
    for p, q in zip(model.parameters(), cl.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-6)
