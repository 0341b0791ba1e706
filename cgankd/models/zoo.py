"""Model registry and the wrapper that fixes the input contract for every model."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import nn

from cgankd.base.registry import Registry

Backbone = Callable[..., nn.Module]
MODELS: Registry[Backbone] = Registry("model")


class ImageModel(nn.Module):
    """Input: float32 N x C x H x W in [0, 1] (the serving contract); output: logits or values.

    The backbone sees inputs scaled to [-1, 1]; doing it here means the ONNX graph carries the
    preprocessing, so serving never re-types it.
    """

    def __init__(self, backbone: nn.Module, meta: dict) -> None:
        super().__init__()
        self.backbone = backbone
        self.meta = meta

    def forward(self, x: torch.Tensor, is_feat: bool = False):  # noqa: ANN201 (tensor, or maps and tensor)
        """Outputs; with ``is_feat`` also the backbone's stage feature maps: ``(maps, out)``."""
        return self.backbone(x * 2.0 - 1.0, is_feat=is_feat) if is_feat else self.backbone(x * 2.0 - 1.0)


def build_model(name: str, in_channels: int, num_outputs: int, resolution: int,
                width: float = 1.0) -> ImageModel:
    builder = MODELS.get(name)
    sized = "resolution" in inspect.signature(builder).parameters  # a network whose layers depend on it
    backbone = builder(in_channels=in_channels, num_outputs=num_outputs, width=width,
                       **({"resolution": resolution} if sized else {}))
    meta = {"arch": name, "in_channels": in_channels, "num_outputs": num_outputs,
            "resolution": resolution, "width": width}
    return ImageModel(backbone, meta)


def rebuild_model(meta: dict, state_dict: dict) -> ImageModel:
    """A model saved with its ``meta`` (arch, channels, outputs, resolution, width), in eval mode."""
    model = build_model(meta["arch"], meta["in_channels"], meta["num_outputs"], meta["resolution"],
                        meta.get("width", 1.0))
    model.meta = meta
    model.load_state_dict(state_dict)
    return model.eval()


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
