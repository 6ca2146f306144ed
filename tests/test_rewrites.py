"""The engine's exact rewrites give the same values and gradients as the model as written
(sftc.engine.rewrites), and are only taken where a trace shows that nothing else could tell."""
import copy
import pickle

import pytest
import torch
from torch import nn

import sftc
from sftc.engine import Accel, rewrites as R
from sftc.engine.inference_model import InferenceModel

LAYOUTS = [torch.contiguous_format, torch.channels_last]
SMALL_CNN = ["relu_pool:stage1.2>stage1.3", "relu_pool:stage2.2>stage2.3", "mean_pool:stage3.3"]


def forward_backward(model, x):
    model.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_()
    torch.manual_seed(1)  # the same dropout masks for both
    out = model(x)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return out.detach(), [x.grad] + [p.grad.clone() for p in model.parameters()]


def assert_same(model, x, expected=None):
    """Equal values and gradients (``torch.equal``: -0.0 equals +0.0, see the module docstring)."""
    rewritten = copy.deepcopy(model)
    done = R.apply(rewritten)
    if expected is not None:
        assert done == expected
    out_a, grads_a = forward_backward(model, x)
    out_b, grads_b = forward_backward(rewritten, x)
    assert torch.equal(out_a, out_b)
    assert all(torch.equal(a, b) for a, b in zip(grads_a, grads_b))
    return rewritten


@pytest.mark.parametrize("layout", LAYOUTS)
def test_small_cnn_rewritten_gives_the_same_values_and_gradients(layout):
    torch.manual_seed(0)
    model = sftc.build_model("small-cnn", 1, 10, seed=0).train().to(memory_format=layout)
    assert_same(model, torch.randn(16, 1, 28, 28).contiguous(memory_format=layout), SMALL_CNN)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_ties_and_non_positive_windows_route_gradients_as_before(layout):
    """Windows whose maximum is tied, zero or negative, odd sizes (ceil mode), padding, dilation."""
    x = torch.tensor([[0., 0., -1., -2., 3.], [-1., 2., 2., -3., 3.], [-5., -4., 0., 0., -1.],
                      [-4., -5., 0., 1., 1.], [7., 7., 7., 7., -1.]])
    x = torch.stack([x, -x, x.flip(0)]).unsqueeze(0).repeat(2, 1, 1, 1)
    for pool in (nn.MaxPool2d(2, ceil_mode=True), nn.MaxPool2d(3, stride=2, padding=1),
                 nn.MaxPool2d(2), nn.MaxPool2d(2, stride=1, dilation=2)):
        for inplace in (False, True):
            model = nn.Sequential(nn.Conv2d(3, 3, 1, bias=False), nn.ReLU(inplace=inplace), pool,
                                  nn.Flatten())
            with torch.no_grad():
                model[0].weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            assert_same(model.to(memory_format=layout), x.contiguous(memory_format=layout),
                        ["relu_pool:1>2"])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_global_mean_after_relu_and_before_batch_norm(layout):
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.AdaptiveAvgPool2d((1, 1)), nn.BatchNorm2d(8), nn.Flatten())
    assert_same(model.to(memory_format=layout),
                torch.randn(4, 3, 9, 7).contiguous(memory_format=layout), ["mean_pool:3"])


@pytest.mark.slow
def test_global_mean_gradient_is_materialised_in_the_input_layout():
    x = torch.randn(4, 8, 5, 3).contiguous(memory_format=torch.channels_last).requires_grad_()
    pool = nn.AdaptiveAvgPool2d((1, 1))
    pool.__class__ = R.GlobalMeanPool
    out = pool(x)
    assert out.stride() == torch.nn.functional.adaptive_avg_pool2d(x, 1).stride()
    grad = torch.randn_like(out)
    (g,) = torch.autograd.grad(out, x, grad)
    assert g.is_contiguous(memory_format=torch.channels_last) and 0 not in g.stride()
    assert torch.equal(g, (grad / 15).expand_as(x))
    assert torch.equal(out, torch.nn.functional.adaptive_avg_pool2d(x, 1))
    # torch.func works through it
    per_sample = torch.func.vmap(torch.func.grad(lambda s: pool(s.unsqueeze(0)).sum()))(x)
    assert torch.allclose(per_sample, torch.full_like(x, 1 / 15))
    tangent = torch.randn_like(x)
    _, forward_grad = torch.func.jvp(pool, (x.detach(),), (tangent,))
    assert torch.equal(forward_grad, torch.nn.functional.adaptive_avg_pool2d(tangent, 1))


def test_only_what_nothing_else_can_tell_is_rewritten():
    class Custom(nn.Module):  # the ReLU's output is also read by the skip connection
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 1)
            self.block = nn.Sequential(nn.ReLU(inplace=True), nn.MaxPool2d(2))
            self.up = nn.Upsample(scale_factor=2)

        def forward(self, x):
            y = self.conv(x)
            return self.up(self.block(y)) + y   # an in-place ReLU changes y: keep it

    class Tap(nn.Module):  # a feature tap between the ReLU and the pool
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(2, 2, 1), nn.ReLU(), nn.MaxPool2d(2))

        def forward(self, x):
            return self.features[:2](x).mean() + self.features(x).mean()

    class TwoReaders(nn.Module):  # the ReLU runs once, and its output is read twice
        def __init__(self):
            super().__init__()
            self.relu, self.pool = nn.ReLU(), nn.MaxPool2d(2)

        def forward(self, x):
            y = self.relu(x)
            return self.pool(y).sum() + y.sum()

    class Untraceable(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2))

        def forward(self, x):
            return self.body(x) if x.sum() > 0 else -self.body(x)

    shared = nn.ReLU()
    others = nn.Sequential(
        nn.Sequential(shared, nn.MaxPool2d(2)), nn.Sequential(shared),   # ReLU called twice
        nn.Sequential(nn.ReLU(), nn.MaxPool2d(2, return_indices=True)))  # indices
    mixed = nn.Sequential(nn.LeakyReLU(), nn.MaxPool2d(2), nn.BatchNorm2d(2),
                          nn.AdaptiveAvgPool2d(1), nn.ReLU(), nn.AdaptiveAvgPool2d(2))
    for model in (Custom(), Tap(), TwoReaders(), Untraceable(), others, mixed):
        assert R.find(model) == [] and R.apply(model) == []
    x = torch.randn(2, 2, 4, 4)
    assert_same(Custom(), x, [])
    # a hook would see what a rewrite changes (the ReLU's output)
    hooked = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
    handles = [hooked[0].register_forward_hook(lambda *a: None),
               hooked[3].register_forward_pre_hook(lambda *a: None)]
    assert R.apply(copy.deepcopy(hooked)) == []
    for handle in handles:
        handle.remove()
    assert R.apply(hooked) == ["relu_pool:0>1", "mean_pool:3"]


def test_a_rewritten_model_pickles_copies_and_unpatches():
    model = sftc.build_model("small-cnn", 1, 10, seed=0).eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert R.apply(model) == SMALL_CNN and R.apply(model) == []   # not twice
    assert model.state_dict().keys() == state.keys()
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        for other in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
            assert torch.equal(other(x), model(x))
    R.unpatch(model)
    assert not any(R.is_rewritten(m) for m in model.modules())
    assert type(model.stage1[2]) is nn.ReLU and type(model.stage3[3]) is nn.AdaptiveAvgPool2d
    assert R.apply(model) == SMALL_CNN  # and it can be rewritten again


@pytest.mark.slow
def test_a_run_with_the_rewrites_trains_the_same_weights(digits_split, digits_original):
    plain = sftc.unlearn(digits_original.model, digits_split, "sftc", epochs=2, device="cpu",
                         progress=False, accel="off")
    rewritten = sftc.unlearn(digits_original.model, digits_split, "sftc", epochs=2, device="cpu",
                             progress=False, accel={**Accel.plain().__dict__,
                                                    "exact_rewrites": "on"})
    assert rewritten.history.accel["train"]["exact_rewrites"] == SMALL_CNN
    assert rewritten.history.accel["inference"][0]["exact_rewrites"] == SMALL_CNN
    assert plain.history.accel["train"]["exact_rewrites"] == []
    for p, q in zip(plain.model.state_dict().values(), rewritten.model.state_dict().values()):
        assert torch.equal(p, q)
    # the returned model is the model as written again
    assert not any(R.is_rewritten(m) for m in rewritten.model.modules())


def test_the_environment_switch_turns_the_rewrites_off():
    assert Accel.parse(None, {}).exact_rewrites == "auto"
    assert Accel.parse(None, {"SFTC_ACCEL": "off"}).exact_rewrites == "off"
    assert Accel.parse(Accel(exact_rewrites="on"), {"SFTC_ACCEL": "off"}).exact_rewrites == "on"
    with pytest.raises(sftc.SftcError, match="exact_rewrites must be one of"):
        Accel(exact_rewrites="maybe").validate()


def test_inference_copies_are_rewritten_after_folding_and_give_the_same_logits():
    torch.manual_seed(0)
    model = sftc.build_model("small-cnn", 1, 10, seed=0).eval()
    x = torch.randn(8, 1, 28, 28)
    folded = InferenceModel(model, x, Accel(fold_bn="on", channels_last="off",
                                            linear_convs="off"))
    assert folded.record["fold_bn"] == "fx" and folded.record["exact_rewrites"] == SMALL_CNN
    assert torch.allclose(folded(x), model(x), atol=1e-5)
    unfolded = InferenceModel(model, x, Accel(fold_bn="off", channels_last="off",
                                              linear_convs="off"))
    with torch.no_grad():
        assert torch.equal(unfolded(x), model(x))
    assert not any(R.is_rewritten(m) for m in model.modules())  # the source is untouched


@pytest.mark.slow
def test_torchvision_models_rewritten_give_the_same_values_and_gradients():
    """ResNet-18's stem (ReLU then max-pool, outside any Sequential); EfficientNet-B0 has SiLU
    before its poolings and is left alone."""
    torch.manual_seed(0)
    for name, expected in (("resnet18", ["relu_pool:relu>maxpool"]), ("efficientnet_b0", [])):
        model = sftc.build_model(name, 3, 10, seed=0).train().to(memory_format=torch.channels_last)
        assert_same(model, torch.randn(2, 3, 32, 32).contiguous(memory_format=torch.channels_last),
                    expected)
