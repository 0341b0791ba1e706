"""A small software renderer: orthographic camera, Lambert shading, painter's algorithm.

Faces are rasterised with Pillow at ``supersample`` x the output size and box-filtered down, so
edges are anti-aliased. Everything is numpy + Pillow; one 32x32 image costs well under a ms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from cgankd.data.mesh import CompiledMesh


@dataclass(frozen=True)
class Pose:
    yaw: float  # degrees, rotation about the vertical axis; 0 shows the model's front
    elevation: float  # degrees the camera looks down from the horizon
    scale: float = 0.9  # fraction of the half-frame the bounding sphere fills
    shift: tuple[float, float] = (0.0, 0.0)  # offset of the object, in fractions of the frame


@dataclass(frozen=True)
class Style:
    colors: np.ndarray  # (3, 3) RGB in [0, 1] per colour group
    light: np.ndarray  # (3,) unit light direction in camera space
    ambient: float
    background: tuple[np.ndarray, np.ndarray]  # two RGB colours: top and bottom of a gradient
    horizon: float  # 0..1, where the wall/floor split sits; gradient blends around it
    clutter: tuple[tuple[int, np.ndarray, np.ndarray], ...] = ()  # (kind, box xyxy, rgb)
    noise: float = 0.0
    noise_seed: int = 0


def rotation(yaw_deg: float, elevation_deg: float) -> np.ndarray:
    a, e = np.deg2rad(yaw_deg), np.deg2rad(elevation_deg)
    ry = np.array([[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0], [-np.sin(a), 0.0, np.cos(a)]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(e), -np.sin(e)], [0.0, np.sin(e), np.cos(e)]])
    return rx @ ry


def _background(style: Style, size: int) -> Image.Image:
    t = np.linspace(0.0, 1.0, size)[:, None]
    w = np.clip((t - style.horizon) * 8.0 + 0.5, 0.0, 1.0)  # soft wall/floor split
    top, bottom = style.background
    col = (1 - w) * top[None, :] + w * bottom[None, :]  # (size, 3)
    arr = np.broadcast_to(col[:, None, :], (size, size, 3))
    img = Image.fromarray((arr * 255).astype(np.uint8), "RGB")
    if style.clutter:
        draw = ImageDraw.Draw(img)
        for kind, box, rgb in style.clutter:
            xy = [float(v) * size for v in box]
            fill = tuple(int(c * 255) for c in rgb)
            (draw.ellipse if kind == 0 else draw.rectangle)(xy, fill=fill)
    return img


def render(mesh: CompiledMesh, pose: Pose, style: Style, resolution: int = 32,
           supersample: int = 2) -> np.ndarray:
    """Render ``mesh`` and return an HxWx3 uint8 image."""
    size = resolution * supersample
    rot = rotation(pose.yaw, pose.elevation)
    v = mesh.vertices @ rot.T
    n = mesh.normals @ rot.T
    scale = pose.scale * (size / 2) / mesh.radius
    px = size / 2 + v[:, 0] * scale + pose.shift[0] * size
    py = size / 2 - v[:, 1] * scale + pose.shift[1] * size
    visible = np.flatnonzero(n[:, 2] > 1e-6)
    depth = v[mesh.face_index[visible], 2].mean(axis=1)
    order = visible[np.argsort(depth, kind="stable")]
    shade = style.ambient + (1 - style.ambient) * np.clip(n[order] @ style.light, 0.0, 1.0)
    colors = (style.colors[mesh.groups[order]] * shade[:, None] * 255).astype(np.int64)
    img = _background(style, size)
    draw = ImageDraw.Draw(img)
    for f, rgb in zip(order, colors.tolist(), strict=True):
        idx = mesh.face_index[f, : mesh.face_size[f]]
        draw.polygon(list(zip(px[idx].tolist(), py[idx].tolist(), strict=True)), fill=tuple(rgb))
    if supersample > 1:
        img = img.resize((resolution, resolution), Image.BOX)
    out = np.asarray(img, dtype=np.uint8)
    if style.noise > 0:
        rng = np.random.default_rng(style.noise_seed)
        noisy = out.astype(np.float32) + rng.normal(0, style.noise * 255, out.shape)
        out = np.clip(noisy, 0, 255).astype(np.uint8)
    return out
