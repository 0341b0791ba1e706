"""The kinds of model file: how each one rebuilds its module from ``meta`` + ``state`` (each with
its own function-level import, so dvc.yaml gives a stage only the code of the kinds it loads), what
each kind saves, and ``load``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from cgankd.base.errors import CgankdError
from cgankd.store.files import KINDS, read, save


def load(path: str | Path, kind: str, device: torch.device | str = "cpu", stage: str | None = None) -> nn.Module:
    """The module saved in ``path``, rebuilt, on ``device``, in eval mode."""
    meta, state = read(path, kind, stage)
    return KINDS.get(kind)(meta, state).to(device).eval()


# -- the kinds ------------------------------------------------------------------------------


@KINDS.register("image_model")
def _image_model(meta: dict[str, Any], state: dict[str, torch.Tensor]) -> nn.Module:
    from cgankd.models import rebuild_model

    return rebuild_model(meta["model"], state)


@KINDS.register("gan_generator")
def _gan_generator(meta: dict[str, Any], state: dict[str, torch.Tensor]) -> nn.Module:
    from cgankd.gan.archs import build_generator

    if meta.get("arch") == "biggan-pytorch":  # the authors' released generator (gan.init)
        from cgankd.gan.biggan_pytorch import build

        g = build(meta["biggan_pytorch"])
        g.load_state_dict(state)
        return g
    gan = meta["gan"]
    y2h = None
    if gan.get("ccgan", {}).get("embedding") == "y2h" and meta["num_classes"] is None:
        from cgankd.gan.label_embed import Y2H

        y2h = Y2H(gan["embed_dim"])
    g = build_generator(gan, meta["num_classes"], meta["resolution"], meta["channels"], y2h)
    g.load_state_dict(state)
    return g


@KINDS.register("vkd_generator")
def _vkd_generator(meta: dict[str, Any], state: dict[str, torch.Tensor]) -> nn.Module:
    from cgankd.kd.vkd_generator import VirtualKnowledgeGenerator

    v = VirtualKnowledgeGenerator(meta["num_classes"], meta["z_dim"])
    v.load_state_dict(state)
    return v


@KINDS.register("extractor")
def _extractor(meta: dict[str, Any], state: dict[str, torch.Tensor]) -> nn.Module:
    from cgankd.features.autoencoders import rebuild
    from cgankd.models import rebuild_model

    if meta["kind"] != "sparse_ae":  # a classifier, saved with its ImageModel meta
        return rebuild_model({k: v for k, v in meta.items() if k != "kind"}, state)
    model = rebuild(meta)
    model.load_state_dict(state)
    return model


@KINDS.register("dre")
def _dre(meta: dict[str, Any], state: dict[str, torch.Tensor]) -> nn.Module:
    from cgankd.subsample.dre import RatioMLP

    dre = RatioMLP(meta["feat_dim"], meta["num_classes"], meta["hidden"], meta.get("net", "mlp2"))
    dre.load_state_dict(state)
    return dre


@KINDS.register("gan_checkpoint")
def _no_module(meta: dict[str, Any], state: dict[str, torch.Tensor]) -> nn.Module:
    raise CgankdError("gan checkpoint", "is training state, read it with store.read")


# -- what each kind saves -----------------------------------------------------------------


def save_model(model: nn.Module, path: str | Path, extra: dict[str, Any] | None = None) -> None:
    """A teacher or student (an ``ImageModel``) with its meta and e.g. ``best_step``."""
    save(path, "image_model", {"model": model.meta, **(extra or {})}, model.state_dict())


def load_model(path: str | Path, device: torch.device | str = "cpu") -> nn.Module:
    return load(path, "image_model", device)


def save_gan_generator(g: nn.Module, path: str | Path, meta: dict[str, Any]) -> None:
    save(path, "gan_generator", meta, g.state_dict())


def save_extractor(model: nn.Module, spec: dict[str, Any], path: str | Path) -> None:
    save(path, "extractor", spec, model.state_dict())


def save_vkd_generator(v: nn.Module, path: str | Path, extra: dict[str, Any]) -> None:
    save(path, "vkd_generator", {"num_classes": v.num_classes, "z_dim": v.z_dim, **extra}, v.state_dict())


def save_dre(dre: nn.Module, path: str | Path) -> None:
    spec = {"feat_dim": dre.mean.numel(), "num_classes": dre.label.num_classes, "hidden": dre.hidden,
            "net": dre.net_name}
    save(path, "dre", spec, dre.state_dict())
