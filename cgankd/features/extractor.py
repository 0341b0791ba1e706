"""Train and apply the feature extractor (saved and loaded by ``cgankd.store``), chosen by task:
classification -> a CIFAR ResNet trained with cross-entropy (penultimate features);
regression -> a sparse autoencoder with a label head (its code)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from cgankd.base.errors import CgankdError
from cgankd.base.registry import Registry
from cgankd.compute import distributed
from cgankd.compute.device import Runtime, module_device
from cgankd.config import Config
from cgankd.data.prepared import Prepared
from cgankd.features.sparse_ae import train_sparse_ae
from cgankd.models import ImageModel, build_model
from cgankd.train.data import to_float
from cgankd.train.evaluate import metrics, predict
from cgankd.train.loop import fit

Trainer = Callable[[Config, Prepared, Runtime], tuple[nn.Module, dict[str, Any], list[dict[str, float]]]]
TRAINERS: Registry[Trainer] = Registry("feature extractor")


@TRAINERS.register("classification")
def _classifier(cfg: Config, data: Prepared, rt: Runtime) -> tuple[nn.Module, dict[str, Any], list[dict[str, float]]]:
    m, ec = data.meta, cfg.extractor
    model = build_model(ec.arch, m.channels, m.num_classes, m.resolution, ec.width)
    if not hasattr(model.backbone, "features"):
        raise CgankdError("param extractor.arch", f"{ec.arch} has no penultimate features; use a resnet")
    res = fit(model.to(rt.device), data, ec, cfg.seed + 5, "train-extractor", runtime=rt)
    spec = {"kind": "classifier", **res.best.meta}
    return res.best, spec, res.history


@TRAINERS.register("regression")
def _sparse_ae(cfg: Config, data: Prepared, rt: Runtime) -> tuple[nn.Module, dict[str, Any], list[dict[str, float]]]:
    from cgankd.features.autoencoders import AES, spec

    m, ec = data.meta, cfg.extractor
    if distributed.active():
        raise CgankdError("torchrun", "the regression extractor (a sparse autoencoder) trains in one "
                          "process: run `cgankd train-extractor` without torchrun")
    model, how = AES.get(ec.ae)(ec, m, len(data["train"].labels))
    model = model.to(rt.device)
    hist = train_sparse_ae(model, data["train"], m, how, cfg.seed + 5)
    return model, spec(ec, m, model), hist


@torch.no_grad()
def extract(model: nn.Module, images: np.ndarray, batch_size: int = 500, quality: bool = False) -> np.ndarray:
    """Features (N x D float32) of uint8 images: a classifier's penultimate layer, or the
    autoencoder's code. ``quality``: those the fakes' quality measures (FID, Intra-FID) read, where a
    network has its own (``Backbone.quality_features``)."""
    model.eval()
    if isinstance(model, ImageModel):  # its backbone sees [-1, 1], like ImageModel.forward
        which = model.backbone.quality_features if quality else model.backbone.features

        def feats(x: torch.Tensor) -> torch.Tensor:
            return which(x * 2.0 - 1.0)
    else:
        feats = model.features
    dev = module_device(model)
    outs = [feats(to_float(images[i:i + batch_size]).to(dev)).float().cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(outs).numpy() if outs else np.empty((0, 0), np.float32)


def extractor_metrics(model: nn.Module, data: Prepared) -> dict[str, float]:
    """How well the extractor knows the data: val accuracy, or the label head's val MAE and the
    reconstruction error."""
    val = data["val"]
    if isinstance(model, ImageModel):
        return metrics(predict(model, val.images), val.labels, data.meta, "val")
    x = to_float(val.images).to(module_device(model))
    with torch.no_grad():
        _, recon, pred = model(x)
    out = metrics(pred.cpu().numpy(), val.labels, data.meta, "val")
    out["val_recon_mse"] = float(((recon - model.target(x)) ** 2).mean())
    return out
