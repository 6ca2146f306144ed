"""The engine's exact rewrites give bit-for-bit the same values and gradients as the model as
written (sftc.engine.rewrites)."""
import copy

import pytest
import torch
from torch import nn

import sftc
from sftc.engine import Accel, accel as A, rewrites as R

LAYOUTS = [torch.contiguous_format, torch.channels_last]


def forward_backward(model, x):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)  # the same dropout masks (EfficientNet) for both
    out = model(x)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return out.detach(), [p.grad.clone() for p in model.parameters()]


def assert_bitwise_same(model, x):
    rewritten = copy.deepcopy(model)
    done = R.apply(rewritten)
    out_a, grads_a = forward_backward(model, x)
    out_b, grads_b = forward_backward(rewritten, x)
    assert torch.equal(out_a, out_b)
    assert all(torch.equal(a, b) for a, b in zip(grads_a, grads_b))
    return done


@pytest.mark.parametrize("layout", LAYOUTS)
def test_small_cnn_rewritten_is_bitwise_the_same(layout):
    torch.manual_seed(0)
    model = sftc.build_model("small-cnn", 1, 10, seed=0).train().to(memory_format=layout)
    x = torch.randn(16, 1, 28, 28).contiguous(memory_format=layout)
    done = assert_bitwise_same(model, x)
    assert done == ["relu_pool:stage1.2>stage1.3", "relu_pool:stage2.2>stage2.3",
                    "mean_pool:stage3.3"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_ties_and_non_positive_windows_route_gradients_as_before(layout):
    """Windows whose maximum is tied, zero or negative, odd sizes (ceil mode) and padding."""
    x = torch.tensor([[0., 0., -1., -2., 3.], [-1., 2., 2., -3., 3.], [-5., -4., 0., 0., -1.],
                      [-4., -5., 0., 1., 1.], [7., 7., 7., 7., -1.]])
    x = torch.stack([x, -x, x.flip(0)]).unsqueeze(0).repeat(2, 1, 1, 1)
    x = x.contiguous(memory_format=layout).requires_grad_()
    for pool in (nn.MaxPool2d(2, ceil_mode=True), nn.MaxPool2d(3, stride=2, padding=1),
                 nn.MaxPool2d(2)):
        model = nn.Sequential(nn.Conv2d(3, 3, 1, bias=False), nn.ReLU(), pool,
                              nn.AdaptiveAvgPool2d(1), nn.Flatten())
        with torch.no_grad():
            model[0].weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        model = model.to(memory_format=layout)
        ref, rewritten = x.detach().clone().requires_grad_(), x.detach().clone().requires_grad_()
        fast = copy.deepcopy(model)
        assert R.apply(fast) == ["relu_pool:1>2", "mean_pool:3"]
        out_a, out_b = model(ref), fast(rewritten)
        weights = torch.arange(1., out_a.numel() + 1).view_as(out_a)
        (out_a * weights).sum().backward()
        (out_b * weights).sum().backward()
        assert torch.equal(out_a, out_b)
        assert torch.equal(ref.grad, rewritten.grad)
        assert torch.equal(model[0].weight.grad, fast[0].weight.grad)


def test_global_mean_gradient_is_materialised_in_the_input_layout():
    x = torch.randn(4, 8, 5, 3).contiguous(memory_format=torch.channels_last).requires_grad_()
    pool = nn.AdaptiveAvgPool2d((1, 1))
    R.apply(pool)
    out = pool(x)
    grad = torch.randn_like(out)
    (g,) = torch.autograd.grad(out, x, grad)
    assert g.is_contiguous(memory_format=torch.channels_last) and 0 not in g.stride()
    assert torch.equal(g, (grad / 15).expand_as(x))
    assert torch.equal(out, torch.nn.functional.adaptive_avg_pool2d(x, 1))


def test_only_what_is_provably_the_same_is_rewritten():
    class Custom(nn.Sequential):  # its own forward: the order of its children means nothing
        def forward(self, x):
            return self[1](x) + self[0](x)

    shared = nn.ReLU()
    model = nn.Sequential(
        Custom(nn.ReLU(), nn.MaxPool2d(2)),
        nn.Sequential(shared, nn.MaxPool2d(2)), nn.Sequential(shared),   # ReLU used twice
        nn.Sequential(nn.ReLU(), nn.MaxPool2d(2, return_indices=True)),  # indices
        nn.Sequential(nn.LeakyReLU(), nn.MaxPool2d(2)),                  # another activation
        nn.AdaptiveAvgPool2d(2), nn.AdaptiveMaxPool2d(1))                # not a global mean
    assert R.relu_pool_pairs(model) == []
    assert R.apply(model) == []
    # a hook would see what a rewrite changes (the ReLU's output)
    hooked = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1))
    handles = [hooked[0].register_forward_hook(lambda *a: None),
               hooked[2].register_forward_pre_hook(lambda *a: None)]
    assert R.apply(copy.deepcopy(hooked)) == []
    for handle in handles:
        handle.remove()
    assert R.apply(hooked) == ["relu_pool:0>1", "mean_pool:2"]


def test_unpatch_restores_the_modules():
    model = sftc.build_model("small-cnn", 1, 10, seed=0)
    R.apply(model)
    R.unpatch(model)
    assert not any(R.MARK in m.__dict__ or "forward" in m.__dict__ for m in model.modules())
    assert R.apply(model)  # and it can be rewritten again


def test_a_run_with_the_rewrites_trains_the_same_weights_bit_for_bit(digits_split,
                                                                     digits_original):
    plain = sftc.unlearn(digits_original.model, digits_split, "sftc", epochs=2, device="cpu",
                         progress=False, accel="off")
    rewritten = sftc.unlearn(digits_original.model, digits_split, "sftc", epochs=2, device="cpu",
                             progress=False, accel={**Accel.plain().__dict__,
                                                    "exact_rewrites": "on"})
    assert rewritten.history.accel["train"]["exact_rewrites"] == [
        "relu_pool:stage1.2>stage1.3", "relu_pool:stage2.2>stage2.3", "mean_pool:stage3.3"]
    assert rewritten.history.accel["inference"][0]["exact_rewrites"]
    assert plain.history.accel["train"]["exact_rewrites"] == []
    for p, q in zip(plain.model.state_dict().values(), rewritten.model.state_dict().values()):
        assert torch.equal(p, q)
    # the returned model is the model as written again
    assert not any(R.MARK in m.__dict__ for m in rewritten.model.modules())


def test_the_environment_switch_turns_the_rewrites_off(monkeypatch):
    assert Accel().without_measuring().exact_rewrites == "auto"  # not measured: stays
    monkeypatch.setenv("SFTC_ACCEL", "off")
    assert Accel().effective().exact_rewrites == "off"
    assert Accel(exact_rewrites="on").effective().exact_rewrites == "on"
    with pytest.raises(sftc.SftcError, match="exact_rewrites must be one of"):
        Accel(exact_rewrites="maybe").validate()


def test_inference_copies_are_rewritten_before_folding_and_give_the_same_logits():
    torch.manual_seed(0)
    model = sftc.build_model("small-cnn", 1, 10, seed=0).eval()
    x = torch.randn(8, 1, 28, 28)
    folded = A.InferenceModel(model, x, Accel(fold_bn="on", channels_last="off",
                                              linear_convs="off"))
    assert folded.record["fold_bn"] == "fx" and len(folded.record["exact_rewrites"]) == 3
    assert torch.allclose(folded(x), model(x), atol=1e-5)
    unfolded = A.InferenceModel(model, x, Accel(fold_bn="off", channels_last="off",
                                                linear_convs="off"))
    with torch.no_grad():
        assert torch.equal(unfolded(x), model(x))
    assert not any(R.MARK in m.__dict__ for m in model.modules())  # the source is untouched


def test_torchvision_models_rewritten_are_bitwise_the_same():
    """ResNet-18's final pooling and EfficientNet-B0's squeeze-and-excitation poolings (a global
    mean whose output multiplies the input again)."""
    torch.manual_seed(0)
    for name, done in (("resnet18", ["mean_pool:avgpool"]), ("efficientnet_b0", None)):
        model = sftc.build_model(name, 3, 10, seed=0).train().to(memory_format=torch.channels_last)
        x = torch.randn(2, 3, 32, 32).contiguous(memory_format=torch.channels_last)
        rewritten = assert_bitwise_same(model, x)
        if done is not None:
            assert rewritten == done
        else:
            assert len(rewritten) == 17 and all(r.startswith("mean_pool:") for r in rewritten)
