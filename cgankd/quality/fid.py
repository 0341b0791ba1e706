"""Frechet distance between Gaussians fitted to two feature sets.

FID = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), with the *squared* mean difference (the
reference code's class-conditional FID used the unsquared norm). Tr((S1 S2)^(1/2)) is computed as
the sum of square roots of the eigenvalues of S1^(1/2) S2 S1^(1/2), a symmetric PSD matrix, so
only numpy's ``eigh`` is needed (no scipy, no complex ``sqrtm`` residue).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Gaussian:
    mu: np.ndarray
    cov: np.ndarray
    n: int


def fit_gaussian(features: np.ndarray) -> Gaussian:
    """Mean and covariance (ddof 1; zeros for a single sample) of N x D features."""
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or len(f) == 0:
        raise ValueError(f"expected a non-empty N x D array, got shape {f.shape}")
    cov = np.cov(f, rowvar=False) if len(f) > 1 else np.zeros((f.shape[1], f.shape[1]))
    return Gaussian(f.mean(0), np.atleast_2d(cov), len(f))


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(a: Gaussian, b: Gaussian) -> float:
    s1h = _psd_sqrt(a.cov)
    m = s1h @ b.cov @ s1h
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0.0, None)).sum()
    diff = a.mu - b.mu
    return float(max(diff @ diff + np.trace(a.cov) + np.trace(b.cov) - 2.0 * tr_sqrt, 0.0))
