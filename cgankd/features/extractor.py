"""Train, save, load and apply the feature extractor, chosen by task through a registry:
classification -> a CIFAR ResNet trained with cross-entropy (penultimate features);
regression -> a sparse autoencoder with a label head (its code)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cgankd.config import Config
from cgankd.data.prepared import Prepared
from cgankd.errors import CgankdError
from cgankd.features.sparse_ae import SparseAE, train_sparse_ae
from cgankd.io import atomic_path
from cgankd.models import ImageModel, build_model, rebuild_model
from cgankd.registry import Registry
from cgankd.train.data import to_float
from cgankd.train.evaluate import metrics, predict
from cgankd.train.loop import fit

Trainer = Callable[[Config, Prepared], tuple[nn.Module, dict[str, Any], list[dict[str, float]]]]
TRAINERS: Registry[Trainer] = Registry("feature extractor")


@TRAINERS.register("classification")
def _classifier(cfg: Config, data: Prepared) -> tuple[nn.Module, dict[str, Any], list[dict[str, float]]]:
    m, ec = data.meta, cfg.extractor
    model = build_model(ec.arch, m.channels, m.num_classes, m.resolution, ec.width)
    if not hasattr(model.backbone, "features"):
        raise CgankdError("param extractor.arch", f"{ec.arch} has no penultimate features; use a resnet")
    res = fit(model, data["train"], data["val"], m, ec, cfg.seed + 5, "train-extractor")
    spec = {"kind": "classifier", **res.best.meta}
    return res.best, spec, res.history


@TRAINERS.register("regression")
def _sparse_ae(cfg: Config, data: Prepared) -> tuple[nn.Module, dict[str, Any], list[dict[str, float]]]:
    m, ec = data.meta, cfg.extractor
    model = SparseAE(m.channels, m.resolution, ec.feat_dim)
    hist = train_sparse_ae(model, data["train"], m, ec.steps, ec.batch_size, ec.ae_lr, ec.sparsity, cfg.seed + 5)
    spec = {"kind": "sparse_ae", "channels": m.channels, "resolution": m.resolution, "feat_dim": ec.feat_dim}
    return model, spec, hist


def save_extractor(model: nn.Module, spec: dict[str, Any], path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save({"spec": spec, "state_dict": model.state_dict()}, tmp)


def load_extractor(path: Path) -> nn.Module:
    if not path.is_file():
        raise CgankdError(str(path), "feature extractor not found (run `cgankd train-extractor` first)")
    state = torch.load(path, map_location="cpu", weights_only=False)
    spec = state["spec"]
    if spec["kind"] != "sparse_ae":  # a classifier, saved with its ImageModel meta
        return rebuild_model({k: v for k, v in spec.items() if k != "kind"}, state["state_dict"])
    model = SparseAE(spec["channels"], spec["resolution"], spec["feat_dim"])
    model.load_state_dict(state["state_dict"])
    return model.eval()


@torch.no_grad()
def extract(model: nn.Module, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Features (N x D float32) of uint8 images: a classifier's penultimate layer, or the
    autoencoder's code."""
    model.eval()
    if isinstance(model, ImageModel):  # its backbone sees [-1, 1], like ImageModel.forward
        def feats(x: torch.Tensor) -> torch.Tensor:
            return model.backbone.features(x * 2.0 - 1.0)
    else:
        feats = model.features
    outs = [feats(to_float(images[i:i + batch_size])) for i in range(0, len(images), batch_size)]
    return torch.cat(outs).numpy() if outs else np.empty((0, 0), np.float32)


def extractor_metrics(model: nn.Module, data: Prepared) -> dict[str, float]:
    """How well the extractor knows the data: val accuracy, or the label head's val MAE and the
    reconstruction error."""
    val = data["val"]
    if isinstance(model, ImageModel):
        return metrics(predict(model, val.images), val.labels, data.meta, "val")
    x = to_float(val.images)
    with torch.no_grad():
        _, recon, pred = model(x)
    out = metrics(pred.numpy(), val.labels, data.meta, "val")
    out["val_recon_mse"] = float(((recon - x) ** 2).mean())
    return out
