"""Random poses and styles for the renderer, drawn from the difficulty knobs in ``RenderCfg``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from cgankd.data.furniture import CLASS_NAMES, FURNITURE
from cgankd.data.mesh import CompiledMesh
from cgankd.data.render import Pose, Style, render

if TYPE_CHECKING:  # the config names the sources (validation): no import at run time
    from cgankd.config import RenderCfg


def build_models(class_name: str, n: int, seed: int) -> list[CompiledMesh]:
    """``n`` models of one class, each with its own proportions; fixed by ``seed``."""
    builder = FURNITURE.get(class_name)
    base = CLASS_NAMES.index(class_name) if class_name in CLASS_NAMES else 0
    rng = np.random.default_rng([seed, base])
    return [builder(rng).compile() for _ in range(n)]


def model_palette(n_models: int, seed: int) -> np.ndarray:
    """A fixed colour palette per model (used when colour jitter is below 1)."""
    return np.random.default_rng([seed, 99]).uniform(0.15, 1.0, (n_models, 3, 3))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def sample_style(rng: np.random.Generator, knobs: RenderCfg, palette: np.ndarray) -> Style:
    random_colors = rng.uniform(0.15, 1.0, (3, 3))
    colors = (1 - knobs.color_jitter) * palette + knobs.color_jitter * random_colors
    light = _unit(np.array([rng.uniform(-1, 1), rng.uniform(0.2, 1), rng.uniform(0.3, 1)]))
    clutter = tuple(
        (int(rng.integers(0, 2)), np.sort(rng.uniform(-0.1, 1.1, (2, 2)), axis=0).T.ravel()[[0, 2, 1, 3]],
         rng.uniform(0, 1, 3))
        for _ in range(int(rng.integers(0, knobs.clutter + 1)))
    )
    return Style(
        colors=colors,
        light=light,
        ambient=float(rng.uniform(*knobs.ambient_range)),
        background=(rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)),
        horizon=float(rng.uniform(0.3, 0.8)),
        clutter=clutter,
        noise=knobs.noise,
        noise_seed=int(rng.integers(0, 2**31)),
    )


def sample_pose(rng: np.random.Generator, knobs: RenderCfg, yaw: float | None = None,
                elevation_range: list[float] | None = None) -> Pose:
    return Pose(
        yaw=float(rng.uniform(*knobs.yaw_range)) if yaw is None else float(yaw),
        elevation=float(rng.uniform(*(elevation_range or knobs.elevation_range))),
        scale=float(rng.uniform(*knobs.scale_range)),
        shift=(float(rng.uniform(-knobs.shift, knobs.shift)),
               float(rng.uniform(-knobs.shift, knobs.shift))),
    )


def render_many(models: list[CompiledMesh], model_idx: np.ndarray, poses: list[Pose],
                styles: list[Style], knobs: RenderCfg) -> np.ndarray:
    """Render a batch; returns uint8 N x 3 x H x W."""
    out = np.empty((len(poses), 3, knobs.resolution, knobs.resolution), np.uint8)
    for i, (m, pose, style) in enumerate(zip(model_idx, poses, styles, strict=True)):
        out[i] = render(models[m], pose, style, knobs.resolution, knobs.supersample).transpose(2, 0, 1)
    return out
