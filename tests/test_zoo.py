"""The model zoo: every model at 16x16x1 and 32x32x3, both heads, features, published sizes."""

from __future__ import annotations

import pytest
import torch

from cgankd.base.errors import CgankdError
from cgankd.models import MODELS, build_model, count_params

ZOO = ["resnet8x4", "resnet32x4", "resnet20", "resnet56", "resnet110", "wrn_16_2", "wrn_40_1",
       "wrn_40_2", "vgg8", "vgg13", "MobileNetV2", "ShuffleNetV1", "ShuffleNetV2", "densenet121"]

# CIFAR-100 sizes published with RepDistiller / CRD (Tian et al., 2020), in millions
PUBLISHED_M = {"resnet8x4": 1.23, "resnet32x4": 7.43, "resnet20": 0.28, "resnet56": 0.86,
               "resnet110": 1.73, "wrn_16_2": 0.70, "wrn_40_1": 0.57, "wrn_40_2": 2.25,
               "vgg8": 3.96, "vgg13": 9.46, "MobileNetV2": 0.81, "ShuffleNetV1": 0.95,
               "ShuffleNetV2": 1.36, "densenet121": 7.05}  # densenet121: pytorch-cifar's, 6.96M at 10 classes


def test_densenets_have_the_sizes_of_the_authors_filter_networks() -> None:
    """The cGAN-KD authors' DenseNets are pytorch-cifar's: 6,956,298 and 26,482,378 parameters at 10 classes."""
    assert count_params(build_model("densenet121", 3, 10, 32)) == 6_956_298
    assert count_params(build_model("densenet161", 3, 10, 32)) == 26_482_378


def test_the_authors_cdrrs_extractor_has_their_sizes_and_3072_d_features() -> None:
    """resnet34_extract is their ResNet34_extract (CIFAR-100/make_fake_datasets/models/ResNet_extract.py):
    26,296,484 parameters at 32 px and 100 classes, 97,213,604 at 128 px (their ImageNet-100 copy, two
    max-pools); its features are the C x H x W-d linear layer the density-ratio model reads, and the
    quality measures read the pooled 512 under it."""
    import torch

    small = build_model("resnet34_extract", 3, 100, 32)
    assert count_params(small) == 26_296_484
    assert count_params(build_model("resnet34_extract", 3, 100, 128)) == 97_213_604
    x = torch.rand(2, 3, 32, 32)
    assert small.eval()(x).shape == (2, 100) and small.backbone.features(x).shape == (2, 3072)
    assert small.backbone.quality_features(x).shape == (2, 512)  # FID's: the pooled trunk the 3,072 come from


def test_zoo_names_are_registered() -> None:
    assert set(ZOO) <= set(MODELS.names())


@pytest.mark.parametrize("name", ZOO)
def test_cifar100_parameter_counts_match_the_published_ones(name: str) -> None:
    n = count_params(build_model(name, 3, 100, 32)) / 1e6
    assert n == pytest.approx(PUBLISHED_M[name], rel=0.02)


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize(("channels", "res", "outputs"), [(1, 16, 1), (3, 32, 10), (3, 64, 1)])
def test_forward_backward_features(name: str, channels: int, res: int, outputs: int) -> None:
    torch.manual_seed(0)
    model = build_model(name, channels, outputs, res)
    x = torch.rand(2, channels, res, res)
    maps, out = model(x, is_feat=True)
    assert out.shape == (2, outputs)
    assert len(maps) >= 3 and all(m.dim() == 4 and m.shape[0] == 2 for m in maps)
    assert maps[-1].shape[1] == model.backbone.feat_dim
    assert torch.equal(out, model(x))  # the feature path is the same computation
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    model.eval()
    with torch.no_grad():
        assert torch.isfinite(model(x[:1])).all()  # batch 1 in eval mode (serving)


def test_width_scales_the_model() -> None:
    half = count_params(build_model("wrn_16_2", 3, 10, 32, width=0.5))
    assert half < count_params(build_model("wrn_16_2", 3, 10, 32)) / 3


def test_unknown_model_names_the_choices() -> None:
    with pytest.raises(CgankdError, match="model 'resnet9': unknown; did you mean resnet8\\? choose one of: "):
        build_model("resnet9", 3, 10, 32)


def test_models_command_lists_the_zoo_with_parameter_counts(capsys: pytest.CaptureFixture[str]) -> None:
    from cgankd.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ZOO) and "7,433,860" in out  # resnet32x4, CIFAR-100 head
    assert main(["models", "--in-channels", "1", "--resolution", "16", "--outputs", "1"]) == 0
    assert "1x16x16, 1 outputs" in capsys.readouterr().out


@pytest.mark.parametrize(("name", "convs"), [("vgg16", 13), ("vgg19", 16)])
def test_the_authors_regression_vgg_conv_stacks(name: str, convs: int) -> None:
    """VGG-16 / VGG-19 as the cGAN-KD authors' regression VGGs stack their 3x3 convs (with BN), 64 px in."""
    model = build_model(name, 3, 1, 64)
    widths = [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(widths) == convs and widths[:2] == [64, 64] and widths[-1] == 512
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, 1)


def test_from_128_px_resnets_and_densenets_take_the_authors_imagenet100_stem() -> None:
    """Their ImageNet-100 RepDistiller resnets and densenets (``#for imagenet100``): a 4x4 stride-2 conv (BN,
    ReLU) and a 3x3 stride-2 max-pool, so the CIFAR stages see 32x32; the rest is unchanged (resnet110: 336
    more weights in the wider first kernel; densenet161: one BN more)."""
    import torch

    for name, extra in (("resnet110", 16 * 3 * (16 - 9)), ("densenet161", 2 * 96 + 96 * 3 * (16 - 9))):
        wide, cifar = build_model(name, 3, 100, 128), build_model(name, 3, 100, 32)
        assert count_params(wide) - count_params(cifar) == extra, name
        maps = wide.backbone.eval().stages(torch.rand(2, 3, 128, 128))
        assert maps[0].shape[-1] == 32 and wide.eval()(torch.rand(2, 3, 128, 128)).shape == (2, 100)
    assert build_model("resnet20", 3, 10, 64).backbone.conv1.kernel_size == (3, 3)  # below 128 px: CIFAR's


def test_the_authors_regression_vgg_has_their_size() -> None:
    """UTKFace/models/vgg.py's vgg11 at 64 px: its convs with bias 9,220,480, their BNs 5,504, the MLP on the
    flattened 512 x 2 x 2 (2,048 -> 512 -> 512, each with BatchNorm1d) 1,313,792, and the output 513."""
    import torch

    m = build_model("vgg11_mlp", 3, 1, 64)
    assert count_params(m) == 9_220_480 + 5_504 + 1_313_792 + 513
    assert m.backbone.features(torch.rand(2, 3, 64, 64)).shape == (2, 2048)
    assert (m.eval()(torch.rand(4, 3, 64, 64)) >= 0).all()  # their last ReLU: a scaled label is never negative


def test_the_authors_regression_resnet_has_their_size() -> None:
    """UTKFace/models/resnet.py's resnet20: the CIFAR trunk with a halving first stage (a 1x1 shortcut more:
    272,112), pooled, and the 64 -> 512 -> 512 MLP with BatchNorm1d (297,984) and the output (513)."""
    import torch

    m = build_model("resnet20_mlp", 3, 1, 64)
    assert count_params(m) == 272_112 + 297_984 + 513
    assert m.backbone.stages(torch.rand(2, 3, 64, 64))[-1].shape == (2, 64, 8, 8)  # 64 px -> 8x8, as theirs
    assert (m.eval()(torch.rand(4, 3, 64, 64)) >= 0).all()
