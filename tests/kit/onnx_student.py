"""Shared by the serving tests: a small trained student on the embedded data, exported with its
serving metadata, and its PyTorch outputs to compare with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cgankd.models import build_model
from cgankd.serve.onnx_export import export_onnx, serving_metadata
from cgankd.train.data import targets, to_float


def trained_student(data, arch: str = "convnet_s", steps: int = 60, seed: int = 0) -> torch.nn.Module:
    """A few Adam steps on the training split: predictions that differ between inputs."""
    m = data.meta
    torch.manual_seed(seed)
    outputs = len(m.classes) if m.task == "classification" else 1
    model = build_model(arch, m.channels, outputs, m.resolution)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    x, y = to_float(data["train"].images), targets(data["train"].labels, m)
    for step in range(steps):
        idx = torch.randint(0, len(x), (32,), generator=torch.Generator().manual_seed(step))
        out = model(x[idx])
        loss = (torch.nn.functional.cross_entropy(out, y[idx]) if m.task == "classification"
                else torch.nn.functional.mse_loss(out.squeeze(1), y[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def export(model: torch.nn.Module, data, path: Path, method: str = "nokd") -> Path:
    m = data.meta
    export_onnx(model, path, m.channels, m.resolution, 18, False, serving_metadata(m, method))
    return path


def torch_outputs(model: torch.nn.Module, images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(to_float(images)).numpy()
