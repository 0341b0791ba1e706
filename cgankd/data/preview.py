"""Image grids as PNG: per class (classification) or per label range (regression)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from cgankd.base.io import atomic_path
from cgankd.task import task_of


def grid(rows: list[np.ndarray], labels: list[str] | None = None, scale: int = 2,
         pad: int = 2, label_width: int = 64) -> Image.Image:
    """Each row an array N x C x H x W (uint8); rows may be of different lengths."""
    c, h, w = rows[0].shape[1:]
    ncol = max(len(r) for r in rows)
    lw = label_width if labels else 0
    canvas = Image.new("RGB", (lw + ncol * (w * scale + pad) + pad,
                               len(rows) * (h * scale + pad) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, row in enumerate(rows):
        y0 = pad + i * (h * scale + pad)
        if labels:
            draw.text((2, y0 + h * scale // 2 - 5), labels[i][:10], fill=(0, 0, 0))
        for j, img in enumerate(row):
            arr = img.transpose(1, 2, 0)
            arr = np.repeat(arr, 3, axis=2) if c == 1 else arr
            tile = Image.fromarray(arr).resize((w * scale, h * scale), Image.NEAREST)
            canvas.paste(tile, (lw + pad + j * (w * scale + pad), y0))
    return canvas


def class_rows(images: np.ndarray, labels: np.ndarray, classes: list[str], per_row: int):
    rows, names = [], []
    for c, name in enumerate(classes):
        idx = np.flatnonzero(labels == c)[:per_row]
        if len(idx):
            rows.append(images[idx])
            names.append(name)
    return rows, names


def range_rows(images: np.ndarray, labels: np.ndarray, n_bins: int, per_row: int):
    lo, hi = float(labels.min()), float(labels.max())
    edges = np.linspace(lo, hi, n_bins + 1)
    rows, names = [], []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        idx = np.flatnonzero((labels >= a) & (labels <= b))
        idx = idx[np.argsort(labels[idx], kind="stable")][:: max(1, len(idx) // per_row)][:per_row]
        if len(idx):
            rows.append(images[idx])
            names.append(f"{a:.4g}-{b:.4g}")
    return rows, names


def save_grid(path: str | Path, images: np.ndarray, labels: np.ndarray, task: str,
              classes: list[str], per_row: int = 12, n_bins: int = 9) -> Path:
    if task_of(task).categorical:
        rows, names = class_rows(images, labels, classes, per_row)
    else:
        rows, names = range_rows(images, labels.astype(np.float64), n_bins, per_row)
    with atomic_path(path) as tmp:
        grid(rows, names).save(tmp, format="PNG")
    return Path(path)
