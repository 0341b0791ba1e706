"""Embedded data: the rendered ``objects`` and ``rc`` sets, and scikit-learn's ``digits``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from cgankd.data.furniture import CLASS_NAMES
from cgankd.data.scene import build_models, model_palette, render_many, sample_pose, sample_style
from cgankd.data.sources.base import SOURCES, Pool, require_task

if TYPE_CHECKING:  # the config names the sources (validation): no import at run time
    from cgankd.config import Config, RenderCfg

TEST_SEED_OFFSET = 1_000_003  # the test set depends on data.seed only through this fixed offset


def render_objects(knobs: RenderCfg, labels: np.ndarray, seed: int) -> np.ndarray:
    """Render one image per class label in ``labels`` (indices into CLASS_NAMES)."""
    per_class = [build_models(name, knobs.models_per_class, knobs.model_seed) for name in CLASS_NAMES]
    models = [m for ms in per_class for m in ms]
    palette = model_palette(len(models), knobs.model_seed)
    rng = np.random.default_rng(seed)
    idx = labels * knobs.models_per_class + rng.integers(0, knobs.models_per_class, len(labels))
    poses = [sample_pose(rng, knobs) for _ in labels]
    styles = [sample_style(rng, knobs, palette[i]) for i in idx]
    return render_many(models, idx, poses, styles, knobs)


def render_rc(knobs: RenderCfg, angles: np.ndarray, n_models: int, elevation: list[float],
              seed: int) -> np.ndarray:
    """Render chairs at the given yaw angles (degrees), a random chair model each."""
    models = build_models("chair", n_models, knobs.model_seed)
    palette = model_palette(n_models, knobs.model_seed)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_models, len(angles))
    poses = [sample_pose(rng, knobs, yaw=a, elevation_range=elevation) for a in angles]
    styles = [sample_style(rng, knobs, palette[i]) for i in idx]
    return render_many(models, idx, poses, styles, knobs)


@SOURCES.register("objects")
def objects(cfg: Config) -> Pool:
    require_task(cfg, "classification")
    d, k = cfg.data, cfg.data.render
    n_cls = len(CLASS_NAMES)
    n_train = d.n_per_class if d.n_per_class is not None else 100
    y_tr = np.repeat(np.arange(n_cls), n_train)
    y_va = np.repeat(np.arange(n_cls), d.n_val_per_class)
    y_te = np.resize(np.arange(n_cls), d.n_test)
    return Pool(
        task="classification",
        train_x=render_objects(k, y_tr, seed=d.seed),
        train_y=y_tr,
        val_x=render_objects(k, y_va, seed=d.seed + 1),
        val_y=y_va,
        test_x=render_objects(k, y_te, seed=d.seed + TEST_SEED_OFFSET),
        test_y=y_te,
        classes=list(CLASS_NAMES),
        provenance={"renderer": "cgankd.data.render", "models_per_class": k.models_per_class},
    )


def rc_angles(step: float) -> np.ndarray:
    """The label grid in [0, 90): multiples of ``step``, rounded to avoid float drift."""
    n = int(round(90.0 / step))
    return np.round(np.arange(n) * step, 6)


@SOURCES.register("rc")
def rc(cfg: Config) -> Pool:
    require_task(cfg, "regression")
    d, k, r = cfg.data, cfg.data.render, cfg.data.rc
    grid = rc_angles(r.angle_step)
    train_angles = grid[:: r.train_every]
    y_tr = np.repeat(train_angles, r.n_per_angle).astype(np.float32)
    y_va = np.random.default_rng([d.seed, 3]).choice(train_angles, r.n_val).astype(np.float32)
    y_te = np.repeat(grid, r.n_test_per_angle).astype(np.float32)
    render = lambda y, s: render_rc(k, y, r.n_models, r.elevation_range, s)  # noqa: E731
    return Pool(
        task="regression",
        train_x=render(y_tr, d.seed),
        train_y=y_tr,
        val_x=render(y_va, d.seed + 1),
        val_y=y_va,
        test_x=render(y_te, d.seed + TEST_SEED_OFFSET),
        test_y=y_te,
        label_unit="degrees",
        provenance={"renderer": "cgankd.data.render", "n_models": r.n_models,
                    "train_angles": len(train_angles), "test_angles": len(grid)},
    )


@SOURCES.register("digits")
def digits(cfg: Config) -> Pool:
    """scikit-learn's bundled 8x8 digits, upsampled to 16x16; a fixed third is the test set."""
    require_task(cfg, "classification")
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0 * 255).round().astype(np.uint8)
    x = x.repeat(2, axis=1).repeat(2, axis=2)[:, None]
    y = bunch.target.astype(np.int64)
    perm = np.random.default_rng(0).permutation(len(y))
    n_test = len(y) // 3
    te, tr = perm[:n_test], perm[n_test:]
    return Pool("classification", x[tr], y[tr], x[te], y[te],
                classes=[str(i) for i in range(10)], provenance={"sklearn": "load_digits"})
