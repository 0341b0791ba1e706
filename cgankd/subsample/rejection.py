"""Rejection sampling with an estimated density ratio: accept a fake with probability r / M.

M (per group: a class; one shared M for all regression labels, valid because it bounds the
ratio at every label) starts as the largest ratio of a burn-in draw and grows whenever a larger
ratio appears, as in cDR-RS. With the true ratio and M = sup r, accepted samples follow p_real
and the acceptance rate is 1 / M.
"""

from __future__ import annotations

import numpy as np


class RejectionSampler:
    def __init__(self, burn_in_ratios: np.ndarray, burn_in_groups: np.ndarray, n_groups: int,
                 rng: np.random.Generator) -> None:
        self.m = np.full(n_groups, max(float(np.max(burn_in_ratios, initial=0.0)), 1e-12))
        per_group = np.zeros(n_groups)
        np.maximum.at(per_group, burn_in_groups, burn_in_ratios)
        seen = np.bincount(burn_in_groups, minlength=n_groups) > 0
        self.m[seen] = np.maximum(per_group[seen], 1e-12)  # groups without burn-in: the global max
        self.rng = rng
        self.offered = np.zeros(n_groups, np.int64)
        self.accepted = np.zeros(n_groups, np.int64)

    def accept(self, r: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """A keep-mask; M is raised (per group, in order) where a ratio exceeds it."""
        u = self.rng.random(len(r))
        out = np.empty(len(r), bool)
        for g in np.unique(groups):
            idx = np.flatnonzero(groups == g)
            running_m = np.maximum.accumulate(np.maximum(r[idx], self.m[g]))
            out[idx] = u[idx] <= r[idx] / running_m
            self.m[g] = running_m[-1]
        np.add.at(self.offered, groups, 1)
        np.add.at(self.accepted, groups, out)
        return out

    @property
    def acceptance_rate(self) -> float:
        return float(self.accepted.sum() / max(self.offered.sum(), 1))
