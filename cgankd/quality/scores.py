"""Quality of a set of fakes against the real data, all in the extractor's feature space:

- FID over all samples; Intra-FID: the mean FID per class (classification) or per sliding label
  window (regression: ``n_windows`` windows of width ``window`` x the range, centres evenly
  spaced), both with the squared mean difference;
- diversity: per class / window, trace(cov of fake features) / trace(cov of real features),
  averaged; 1 = as varied as the real images, 0 = one image repeated;
- label score (computed by the caller from the teacher): accuracy in % or MAE in the label's unit.

Real-data statistics depend only on the data and the extractor, so they are cached in a file
named after both (``real_stats_<source>_<extractor id>.npz``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cgankd.base.io import atomic_path
from cgankd.data.prepared import Meta
from cgankd.quality.fid import Gaussian, fit_gaussian, frechet_distance
from cgankd.task import task_of


def windows(n: int, width: float) -> np.ndarray:
    """Centres of ``n`` windows of ``width`` inside [0, 1] (labels scaled)."""
    half = width / 2
    return np.linspace(half, 1 - half, n) if n > 1 else np.array([0.5])


def group_masks(labels: np.ndarray, num_classes: int | None, centres: np.ndarray | None,
                width: float) -> list[np.ndarray]:
    """One boolean mask per class, or per label window (labels scaled to [0, 1])."""
    if num_classes is not None:
        return [labels == c for c in range(num_classes)]
    return [np.abs(labels - c) <= width / 2 + 1e-9 for c in centres]


@dataclass
class RealStats:
    overall: Gaussian
    groups: list[Gaussian | None]  # None where the real data has fewer than 2 samples


def real_stats(features: np.ndarray, labels: np.ndarray, num_classes: int | None, centres: np.ndarray | None,
               width: float) -> RealStats:
    masks = group_masks(labels, num_classes, centres, width)
    return RealStats(fit_gaussian(features), [fit_gaussian(features[m]) if m.sum() > 1 else None for m in masks])


def file_id(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()[:10]


def save_real_stats(stats: RealStats, path: Path) -> None:
    arrays = {"mu": stats.overall.mu, "cov": stats.overall.cov, "n": np.array(stats.overall.n),
              "n_groups": np.array(len(stats.groups))}
    for i, gs in enumerate(stats.groups):
        if gs is not None:
            arrays.update({f"mu_{i}": gs.mu, f"cov_{i}": gs.cov, f"n_{i}": np.array(gs.n)})
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def load_real_stats(path: Path) -> RealStats:
    z = np.load(path)
    groups = [Gaussian(z[f"mu_{i}"], z[f"cov_{i}"], int(z[f"n_{i}"])) if f"mu_{i}" in z else None
              for i in range(int(z["n_groups"]))]
    return RealStats(Gaussian(z["mu"], z["cov"], int(z["n"])), groups)


def quality(features: np.ndarray, labels: np.ndarray, real: RealStats, num_classes: int | None,
            centres: np.ndarray | None, width: float) -> tuple[dict[str, float], list[float]]:
    """FID, Intra-FID and diversity of fakes (labels: class ids or scaled) against ``real``;
    also the FID of each class / window (NaN where either side has fewer than 2 samples)."""
    per_group, div = [], []
    for mask, rg in zip(group_masks(labels, num_classes, centres, width), real.groups, strict=True):
        if rg is None or mask.sum() < 2:
            per_group.append(float("nan"))
            continue
        fg = fit_gaussian(features[mask])
        per_group.append(frechet_distance(fg, rg))
        div.append(np.trace(fg.cov) / max(np.trace(rg.cov), 1e-12))
    vals = np.array(per_group)
    out = {"fid": frechet_distance(fit_gaussian(features), real.overall) if len(features) > 1 else float("nan"),
           "intra_fid": float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan"),
           "diversity": float(np.mean(div)) if div else float("nan"), "n": int(len(features))}
    return out, per_group


def label_score(out: np.ndarray, labels: np.ndarray, meta: Meta) -> float:
    """Teacher accuracy (%) against the labels, or the teacher's MAE in the label's unit, from
    the teacher's raw outputs."""
    if len(out) == 0:
        return float("nan")
    if task_of(meta.task).categorical:
        return float(100 * np.mean(out.argmax(1) == labels))
    return float(np.mean(np.abs(meta.unscale(out.reshape(-1)) - labels)))
