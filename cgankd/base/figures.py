"""The pipeline's figures, drawn with matplotlib (Agg, no screen): fake quality per processing step,
the teacher's score histogram of the fakes, the GAN's label score while it trains, the confusion
matrix and the MAE by label. Sample grids stay images (cgankd.data.preview).

matplotlib is an edge dependency (the ``ops`` extra): where it is missing (a bare GPU box) each
function writes nothing and returns None after one notice; the numbers behind every figure are
written as CSV / JSON by the stages regardless.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from cgankd.base.io import atomic_path

_NOTICE = False
MODEL_NAMES = {"nokd": "NOKD", "cgankd": "cGAN-KD", "teacher": "teacher"}


def _pyplot() -> Any | None:
    global _NOTICE
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        if not _NOTICE:
            _NOTICE = True
            print("cgankd: matplotlib is not installed: figures skipped (their CSV / JSON are written)",
                  file=sys.stderr)
        return None
    return plt


def _save(fig: Any, path: Path) -> Path:
    plt = _pyplot()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def quality_bars(table: dict[str, dict[str, float]], metrics: list[tuple[str, str]], path: Path) -> Path | None:
    """One panel per metric (key, axis label), a bar per processing step, the value on each bar."""
    plt = _pyplot()
    if plt is None:
        return None
    steps = list(table)
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.4))
    colors = plt.get_cmap("tab10")(np.arange(len(steps)))
    for ax, (key, label) in zip(np.atleast_1d(axes), metrics, strict=True):
        vals = np.array([table[s].get(key, np.nan) for s in steps], float)
        bars = ax.bar(range(len(steps)), np.nan_to_num(vals), color=colors)
        ax.bar_label(bars, [f"{v:.3g}" if np.isfinite(v) else "" for v in vals], fontsize=7)
        names = [f"{s.replace('_', ' + ')}\nn={int(table[s].get('n', 0))}" for s in steps]
        ax.set_xticks(range(len(steps)), names, fontsize=7, rotation=35, ha="right", rotation_mode="anchor")
        ax.set_ylabel(label)
        ax.margins(y=0.15)
    fig.suptitle("fake quality after each processing step (extractor feature space)", fontsize=9)
    return _save(fig, path)


def score_histogram(edges: np.ndarray, burn_in: np.ndarray, kept: np.ndarray, xlabel: str,
                    path: Path) -> Path | None:
    """The teacher's score of the burn-in fakes and of the kept ones (lower = better)."""
    plt = _pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    width = float(edges[1] - edges[0]) if len(edges) > 1 else 1.0
    ax.bar(edges, burn_in, width=width, align="edge", alpha=0.5, label="burn-in (raw)")
    ax.bar(edges, kept, width=width, align="edge", alpha=0.7, label="kept")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fakes")
    ax.legend()
    return _save(fig, path)


def label_score_curve(steps: list[int], values: list[float], ylabel: str, path: Path) -> Path | None:
    """The GAN's label score at each check while it trains."""
    plt = _pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    ax.plot(steps, values, marker="o")
    ax.set_xlabel("GAN iteration")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.set_title("teacher's label score on a fixed batch of EMA fakes", fontsize=9)
    return _save(fig, path)


def confusion(cm: np.ndarray, classes: list[str], title: str, path: Path) -> Path | None:
    """Row-normalised confusion matrix with the counts in the cells."""
    plt = _pyplot()
    if plt is None:
        return None
    n = len(classes)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * n, 0.8 + 0.5 * n))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(n), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="fraction of the true class")
    return _save(fig, path)


def mae_by_label(xs: np.ndarray, table: np.ndarray, models: list[str], unit: str, path: Path) -> Path | None:
    """Test MAE across the label range, one line per model."""
    plt = _pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for j, m in enumerate(models):
        ax.plot(xs, table[:, j], label=MODEL_NAMES.get(m, m))
    ax.set_xlabel(f"label ({unit})" if unit else "label")
    ax.set_ylabel(f"test MAE ({unit})" if unit else "test MAE")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)
