"""The GAN architectures by name (``gan.arch``): cgankd's small BigGAN-style pair, the authors' CIFAR-100
BigGAN (BigGAN-PyTorch's G and D), or the authors' SAGAN-size CcGAN. Each builds G or D from the GAN
section (a ``GanCfg`` as a dict, or the one a generator file carries), so that training and loading a
generator build the same network."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from cgankd.base.errors import CgankdError
from cgankd.base.registry import Registry

Build = Callable[[Mapping[str, Any], "int | None", int, int, "nn.Module | None"], nn.Module]


@dataclass(frozen=True)
class Arch:
    generator: Build
    discriminator: Build


GANS: Registry[Arch] = Registry("gan.arch")


def _biggan_g(gan: Mapping[str, Any], num_classes: int | None, res: int, channels: int,
              y2h: nn.Module | None) -> nn.Module:
    from cgankd.gan.biggan import Generator

    return Generator(num_classes, res, channels, gan["z_dim"], gan["g_ch"], gan["embed_dim"], y2h)


def _biggan_d(gan: Mapping[str, Any], num_classes: int | None, res: int, channels: int,
              y2h: nn.Module | None) -> nn.Module:
    from cgankd.gan.biggan import Discriminator

    return Discriminator(num_classes, res, channels, gan["d_ch"], y2h)


def _sagan_g(gan: Mapping[str, Any], num_classes: int | None, res: int, channels: int,
             y2h: nn.Module | None) -> nn.Module:
    from cgankd.gan.sagan import Generator

    return Generator(num_classes, res, channels, gan["z_dim"], gan["g_ch"], gan["embed_dim"], y2h)


def _sagan_d(gan: Mapping[str, Any], num_classes: int | None, res: int, channels: int,
             y2h: nn.Module | None) -> nn.Module:
    from cgankd.gan.sagan import Discriminator

    return Discriminator(num_classes, res, channels, gan["d_ch"], gan["embed_dim"], y2h)


def _their_biggan_g(gan: Mapping[str, Any], num_classes: int | None, res: int, channels: int,
                    y2h: nn.Module | None) -> nn.Module:
    from cgankd.gan.biggan_pytorch import BigGANPyTorchG
    from cgankd.gan.biggan_pytorch_d import n02

    _classes_only(num_classes, channels)
    g = BigGANPyTorchG(num_classes, res, gan["g_ch"], gan["z_dim"])
    n02(g)
    return g


def _their_biggan_d(gan: Mapping[str, Any], num_classes: int | None, res: int, channels: int,
                    y2h: nn.Module | None) -> nn.Module:
    from cgankd.gan.biggan_pytorch_d import BigGANPyTorchD

    _classes_only(num_classes, channels)
    return BigGANPyTorchD(num_classes, res, gan["d_ch"], channels)


def _classes_only(num_classes: int | None, channels: int) -> None:
    if num_classes is None or channels != 3:
        raise CgankdError("param gan.arch", "biggan_pytorch is the authors' class-conditional GAN for RGB images: "
                          "for regression use sagan or biggan")


GANS.register("biggan")(Arch(_biggan_g, _biggan_d))
GANS.register("biggan_pytorch")(Arch(_their_biggan_g, _their_biggan_d))
GANS.register("sagan")(Arch(_sagan_g, _sagan_d))


def build_generator(gan: Mapping[str, Any], num_classes: int | None, resolution: int, channels: int,
                    y2h: nn.Module | None = None) -> nn.Module:
    """G of ``gan["arch"]`` (files written before the key: biggan); ``y2h`` is copied, then frozen."""
    arch = GANS.get(gan.get("arch", "biggan"))
    return arch.generator(gan, num_classes, resolution, channels, copy.deepcopy(y2h))


def build_discriminator(gan: Mapping[str, Any], num_classes: int | None, resolution: int, channels: int,
                        y2h: nn.Module | None = None) -> nn.Module:
    arch = GANS.get(gan.get("arch", "biggan"))
    return arch.discriminator(gan, num_classes, resolution, channels, copy.deepcopy(y2h))
