"""Model zoo: every backbone x attention variant works, and parameter counts are exact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from harness.cli.main import main
from harness.errors import HarnessError
from harness.models.build import build_model, model_cost
from harness.registry import build_registry, make_plugin_manager

# the built-in model plugins only, on their own plugin manager: never whatever else is installed
REGISTRY = build_registry(*make_plugin_manager(["harness_plugins.models.plugin", "harness_plugins.attention.plugin"],
                                               entry_points=False))
ATTENTION_SPECS = {
    "none": {}, "se": {"reduction": 4}, "eca": {}, "cbam": {}, "ese": {}, "gc": {},
}
CHEAP_BACKBONES = ["resnet20", "resnet18"]


def _build(backbone: str, attention: str = "none", options: dict | None = None, classes: int = 3, in_chans: int = 1):  # type: ignore[no-untyped-def]
    return build_model(REGISTRY, backbone, attention, dict(options or {}), num_classes=classes, in_chans=in_chans, image_size=32)


def _forward_backward(model: torch.nn.Module, in_chans: int, classes: int) -> None:
    x = torch.randn(2, in_chans, 32, 32)
    out = model(x)
    assert out.shape == (2, classes)
    out.sum().backward()
    assert torch.isfinite(out).all()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("backbone", [n for n in REGISTRY.names("backbones") if not n.endswith("/*")])  # timm/*: test_timm_family
def test_every_backbone_contract(backbone: str, capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    model = _build(backbone)
    _forward_backward(model, 1, 3)
    assert main(["model", backbone, "--classes", "3", "--in-chans", "1", "--image-size", "32", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("backbone", CHEAP_BACKBONES)
@pytest.mark.parametrize("attention", sorted(ATTENTION_SPECS))
def test_every_attention_variant_contract(backbone: str, attention: str) -> None:
    assert set(ATTENTION_SPECS) == set(REGISTRY.names("attention"))  # a new variant must join this test
    torch.manual_seed(0)
    model = _build(backbone, attention, ATTENTION_SPECS[attention])
    _forward_backward(model, 1, 3)
    plain = sum(p.numel() for p in _build(backbone).parameters())
    params = sum(p.numel() for p in model.parameters())
    assert params == plain if attention == "none" else params > plain  # eca adds one k-tap conv per module


def _cifar_params(n: int, classes: int, in_chans: int, reduction: int | None) -> int:
    """Hand count of the CIFAR ResNet design: 3x3 convs without bias, BN (2 params/channel),
    1x1 conv + BN projection where channels change, linear head, SE FCs without bias."""
    total = 9 * in_chans * 16 + 2 * 16
    previous = 16
    for width in (16, 32, 64):
        for _block in range(n):
            total += 9 * previous * width + 2 * width + 9 * width * width + 2 * width
            if previous != width:
                total += previous * width + 2 * width
            if reduction:
                total += 2 * width * (width // reduction)
            previous = width
    return total + 64 * classes + classes


@pytest.mark.parametrize("depth,n", [(20, 3), (32, 5), (44, 7), (56, 9), (110, 18)])
def test_cifar_resnet_parameters_match_the_design(depth: int, n: int) -> None:
    plain = sum(p.numel() for p in _build(f"resnet{depth}", classes=10, in_chans=3).parameters())
    se = sum(p.numel() for p in _build(f"se_resnet{depth}", classes=10, in_chans=3).parameters())
    assert plain == _cifar_params(n, 10, 3, None)
    assert se == _cifar_params(n, 10, 3, 16)
    assert depth != 20 or plain == 272_474  # ResNet-20 with projection shortcuts, 10 classes


def test_cifar_resnet_structure() -> None:
    model = _build("resnet20", classes=4, in_chans=1)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.out_channels == 16
    assert [len(s) for s in model.stages().values()] == [3, 3, 3]
    assert model.layer2[0].conv1.stride == (2, 2) and model.layer3[0].conv1.stride == (2, 2)
    assert model.layer1[0].downsample is None and isinstance(model.layer2[0].downsample[0], torch.nn.Conv2d)
    se = _build("se_resnet20").layer3[2].se
    assert se.fc1.in_features == 64 and se.fc1.out_features == 4 and se.fc1.bias is None


@pytest.mark.parametrize("reduction", [2, 4, 8, 16, 32])
def test_resnet50_se_parameter_law(reduction: int) -> None:
    """25,557,032 + 2 * sum_s N_s C_s^2 / r for 1000 classes, with sum_s N_s C_s^2 = 20,119,552."""
    with torch.device("meta"):
        model = build_model(REGISTRY, "resnet50", "se", {"reduction": reduction}, num_classes=1000, in_chans=3, image_size=224)
        plain = build_model(REGISTRY, "resnet50", "none", {}, num_classes=1000, in_chans=3, image_size=224)
    assert sum(p.numel() for p in plain.parameters()) == 25_557_032
    assert sum(p.numel() for p in model.parameters()) == 25_557_032 + 2 * 20_119_552 // reduction


def test_se_knobs_change_the_network() -> None:
    x = torch.randn(2, 1, 32, 32)
    stage_only = _build("resnet20", "se", {"reduction": 4, "stages": [3]})
    assert stage_only.layer1[0].se is None and stage_only.layer3[0].se is not None
    pre = _build("resnet20", "se", {"reduction": 4, "placement": "pre"})
    assert isinstance(pre.layer1[0].conv1, torch.nn.Sequential)
    identity = _build("resnet20", "se", {"reduction": 4, "placement": "identity"})
    assert isinstance(identity.layer1[0].downsample, torch.nn.Sequential)
    post = _build("resnet20", "se", {"reduction": 4, "placement": "post"})
    assert type(post.layer1[0]).__name__ == "PostAttention"
    for options in ({"squeeze": "max"}, {"excitation": "tanh"}, {"excitation": "hard_sigmoid"}, {"bias": True}):
        _forward_backward(_build("resnet20", "se", {"reduction": 4, **options}), 1, 3)
    assert _build("resnet20", "se", {"reduction": 4, "bias": True}).layer1[0].se.fc1.bias is not None
    assert pre(x).shape == identity(x).shape == post(x).shape == (2, 3)


def test_exact_reduction_unlike_timm_rounding(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "resnet18", "--attention", "{name: se, reduction: 16}", "--json"]) == 0
    modules = json.loads(capsys.readouterr().out)["attention"]["modules"]
    assert {m["channels"]: m["hidden"] for m in modules} == {64: 4, 128: 8, 256: 16, 512: 32}
    assert all(m["ratio"] == 16 for m in modules)


@pytest.mark.parametrize("options,message", [
    ({"reduction": 32}, "reduction r=32 is larger than a block's 16 channels"),
    ({"reduction": 4, "stages": [5]}, r"stages \[5\] do not exist"),
    ({"reduction": 4, "squeeze": "median"}, r"option 'squeeze': Input should be 'avg' or 'max' \(got 'median'\)"),
    ({"reduction": 4, "placment": "pre"}, "did you mean 'placement'"),
])
def test_bad_attention_options_are_clear(options: dict, message: str) -> None:
    with pytest.raises(HarnessError, match=message):
        _build("resnet20", "se", options)


def test_builtin_se_backbone_refuses_a_second_attention() -> None:
    with pytest.raises(HarnessError, match="already has SE built in; to vary attention use backbone 'resnet50'"):
        _build("seresnet50", "se", {"reduction": 8})


def test_pretrained_from_local_file_flags_new_se_layers(tmp_path: Path) -> None:
    donor = _build("resnet18", classes=10, in_chans=3)
    weights = tmp_path / "resnet18.pth"
    torch.save(donor.state_dict(), weights)
    model = build_model(REGISTRY, "resnet18", "se", {"reduction": 16}, num_classes=4, in_chans=1,
                        image_size=32, pretrained=str(weights))
    assert torch.equal(model.layer1[0].conv1.weight, donor.layer1[0].conv1.weight)
    assert torch.allclose(model.conv1.weight, donor.conv1.weight.sum(1, keepdim=True))  # 3 -> 1 channel
    notes = " ".join(model.harness_notes)
    assert "attention tensors are newly initialised" in notes and "fc.weight" in notes


def test_a_pickle_that_runs_code_is_refused(tmp_path: Path) -> None:
    import pickle

    class Exploit:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"conv1.weight": Exploit()}))
    with pytest.raises(HarnessError, match="refused to load"):
        build_model(REGISTRY, "resnet18", "none", {}, num_classes=4, in_chans=3, image_size=32, pretrained=str(path))


def test_pretrained_true_offline_says_how_to_supply_weights(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(HarnessError, match="not in timm's local cache.*pretrained: /path/to/weights.pth"):
        build_model(REGISTRY, "resnet18", "none", {}, num_classes=4, in_chans=3, image_size=32, pretrained=True)


def test_cost_accounting() -> None:
    cost = model_cost(_build("resnet20", in_chans=3, classes=10), 3, 32)
    assert cost.params == 272_474
    assert 80e6 < cost.flops < 85e6  # ResNet-20 is ~41 M multiply-adds at 32x32


@pytest.mark.parametrize("excitation", ["sigmoid", "tanh", "relu", "hard_sigmoid"])
@pytest.mark.parametrize("bias", [False, True])
def test_fused_se_gradients_are_exact(excitation: str, bias: bool) -> None:
    from harness_plugins.attention.se_module import SqueezeExcite

    torch.manual_seed(0)
    se = SqueezeExcite(8, 2, bias=bias, excitation=excitation).double()
    assert se.fused
    with torch.no_grad():  # live hidden units, so the squeeze's own gradient path is exercised
        for param in se.parameters():
            param.normal_()
            if param.ndim == 1:
                param.abs_()
    x = torch.randn(3, 8, 5, 4, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, *params: se(x), (x, *se.parameters()))


@pytest.mark.parametrize("placement", ["standard", "pre", "post", "identity"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_se_network_matches_the_plain_ops(placement: str, channels_last: bool) -> None:
    """Same weights, fused and unfused SE: same outputs and the same gradient for every parameter."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(4, 1, 32, 32).contiguous(memory_format=fmt)
    y = torch.tensor([0, 1, 2, 1])
    grads = []
    for fused in (True, False):
        torch.manual_seed(0)
        model = _build("resnet20", "se", {"reduction": 4, "placement": placement, "fused": fused})
        model.to(memory_format=fmt)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        grads.append((loss.detach(), [p.grad for p in model.parameters()]))
    (loss_fused, fused_grads), (loss_plain, plain_grads) = grads
    assert torch.equal(loss_fused, loss_plain)
    for a, b in zip(fused_grads, plain_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_fused_se_under_bf16_autocast_and_retained_graph() -> None:
    from harness_plugins.attention.se_module import SqueezeExcite

    torch.manual_seed(0)
    fused = SqueezeExcite(32, 4)
    plain = SqueezeExcite(32, 4, fused=False)
    plain.load_state_dict(fused.state_dict())
    x = torch.randn(2, 32, 6, 6)
    results = []
    for module in (fused, plain):
        leaf = x.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = module(leaf.bfloat16())
        out.float().sum().backward(retain_graph=True)
        out.float().sum().backward()  # a second pass through a retained graph
        results.append((out.float(), leaf.grad, module.fc1.weight.grad))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("cache", ["huggingface", "torch_hub"])
def test_pretrained_true_reads_timm_weights_from_the_local_cache(
        cache: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Both caches timm fills, laid out as timm leaves them (weights from a random-init donor)."""
    import huggingface_hub.constants
    from safetensors.torch import save_file

    donor = _build("resnet18", classes=1000, in_chans=3)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    if cache == "huggingface":  # timm's default tag for resnet18 is timm/resnet18.a1_in1k
        repo = tmp_path / "hf" / "models--timm--resnet18.a1_in1k"
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text("0123abcd")
        (repo / "snapshots" / "0123abcd").mkdir(parents=True)
        save_file(donor.state_dict(), str(repo / "snapshots" / "0123abcd" / "model.safetensors"))
    else:
        (tmp_path / "torch" / "hub" / "checkpoints").mkdir(parents=True)
        torch.save(donor.state_dict(), tmp_path / "torch" / "hub" / "checkpoints" / "resnet18_a1_0-d63eafa0.pth")
    model = build_model(REGISTRY, "resnet18", "none", {}, num_classes=4, in_chans=3, image_size=32, pretrained=True)
    assert torch.equal(model.layer4[1].conv2.weight, donor.layer4[1].conv2.weight)
    assert "fc.weight" in " ".join(model.harness_notes)  # 1000 -> 4 classes: a new head
