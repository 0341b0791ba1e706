"""Predictions and metrics: accuracy for classification, MAE / RMSE in the label's unit."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from cgankd.data.prepared import Meta
from cgankd.task import task_of
from cgankd.train.data import to_float


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Raw outputs (logits, or scaled values) for uint8 images, in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    outs = [model(to_float(images[i:i + batch_size]).to(device)).float().cpu()
            for i in range(0, len(images), batch_size)]
    model.train(was_training)
    return torch.cat(outs).numpy()


def metrics(outputs: np.ndarray, labels: np.ndarray, meta: Meta, prefix: str) -> dict[str, float]:
    if task_of(meta.task).categorical:
        pred = outputs.argmax(1)
        return {f"{prefix}_acc": float((pred == labels).mean() * 100.0)}
    pred = meta.unscale(outputs.reshape(-1))
    err = pred - labels.astype(np.float64)
    return {f"{prefix}_mae": float(np.abs(err).mean()), f"{prefix}_rmse": float(np.sqrt((err**2).mean()))}


def seen_unseen(outputs: np.ndarray, labels: np.ndarray, train_labels: np.ndarray, meta: Meta,
                prefix: str) -> dict[str, float]:
    """Regression MAE on test labels that occur in the training set vs those that do not
    (the RC-49 protocol: the GAN and the student must interpolate the unseen ones)."""
    seen = np.isin(np.round(labels.astype(np.float64), 4), np.round(train_labels.astype(np.float64), 4))
    err = np.abs(meta.unscale(outputs.reshape(-1)) - labels.astype(np.float64))
    out = {}
    for name, mask in (("seen", seen), ("unseen", ~seen)):
        if mask.any():
            out[f"{prefix}_mae_{name}"] = float(err[mask].mean())
    return out


def better(a: float, b: float | None, task: str) -> bool:
    """Is metric value ``a`` better than ``b`` (accuracy up, MAE down)?"""
    if b is None:
        return True
    return task_of(task).better(a, b)
