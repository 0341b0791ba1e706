"""Teacher filtering (docs/method.md stage 5).

Classification: per class, the cut-off is the rho-quantile of the teacher's cross-entropy on a
burn-in batch of fakes of that class; a fake is kept when its CE is below the cut-off.
Regression: one global cut-off, the rho-quantile of |f_t(x) - y|.
"""

from __future__ import annotations

import numpy as np


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-sample CE from raw logits (numerically stable log-softmax)."""
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(labels)), labels]


def class_cutoffs(ce: np.ndarray, labels: np.ndarray, num_classes: int, rho: float) -> np.ndarray:
    """The rho-quantile of CE per class; classes without burn-in samples get +inf."""
    cut = np.full(num_classes, np.inf)
    for c in range(num_classes):
        vals = ce[labels == c]
        if len(vals):
            cut[c] = np.quantile(vals, rho)
    return cut


def keep_mask(ce: np.ndarray, labels: np.ndarray, cutoffs: np.ndarray, rho: float) -> np.ndarray:
    """Keep CE below the class cut-off; rho = 1 keeps everything (no filtering)."""
    if rho >= 1.0:
        return np.ones(len(ce), bool)
    return ce < cutoffs[labels]


def regression_cutoff(abs_err: np.ndarray, rho: float) -> float:
    return float(np.quantile(abs_err, rho))
