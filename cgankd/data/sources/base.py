"""The source interface and registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cgankd.base.errors import CgankdError
from cgankd.base.registry import Registry

if TYPE_CHECKING:  # the config names the sources (validation): no import at run time
    from cgankd.config import Config


@dataclass
class Pool:
    """What a source yields. ``val_*`` set means the source already applied the label budget."""

    task: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    classes: list[str] = field(default_factory=list)
    label_unit: str = ""
    val_x: np.ndarray | None = None
    val_y: np.ndarray | None = None
    provenance: dict = field(default_factory=dict)


Source = Callable[["Config"], Pool]
SOURCES: Registry[Source] = Registry("data.source")


def require_root(cfg: Config, what: str) -> Path:
    if not cfg.data.root:
        raise CgankdError(f"data.source={cfg.source}", f"needs data.root pointing at {what}")
    root = Path(cfg.data.root).expanduser()
    if not root.exists():
        raise CgankdError(str(root), "no such file or folder (data.root)")
    return root


def require_task(cfg: Config, task: str) -> None:
    if cfg.task != task:
        raise CgankdError(f"data.source={cfg.source}", f"is a {task} data set but task={cfg.task} (add -S task={task})")


def to_nchw(images: np.ndarray, channels: int | None, subject: str) -> np.ndarray:
    """N x H x W or N x H x W x C (or already N x C x H x W) uint8 -> N x C x H x W."""
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim == 4 and images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
        images = images.transpose(0, 3, 1, 2)
    if images.ndim != 4:
        raise CgankdError(subject, f"images must be N x H x W (x C), got shape {images.shape}")
    if images.dtype != np.uint8:
        raise CgankdError(subject, f"images must be uint8, got {images.dtype}")
    if channels is not None and images.shape[1] != channels:
        if images.shape[1] == 1 and channels == 3:
            images = np.repeat(images, 3, axis=1)
        elif images.shape[1] == 3 and channels == 1:
            w = np.array([0.299, 0.587, 0.114], np.float32)[None, :, None, None]
            images = (images.astype(np.float32) * w).sum(1, keepdims=True).round().astype(np.uint8)
    return np.ascontiguousarray(images)
