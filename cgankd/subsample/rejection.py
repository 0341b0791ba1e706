"""Rejection sampling with an estimated density ratio: accept a fake with probability min(1, r / M).

M is set per group (a class; one shared M for all regression labels, valid because it bounds the
ratio at every label) from a burn-in draw:

- ``quantile=1.0`` (published cDR-RS): M = the largest burn-in ratio, raised whenever a larger
  ratio appears. With the true ratio and M = sup r, accepted samples follow p_real exactly and the
  acceptance rate is E[r] / M = 1 / M; an estimated ratio with a long right tail makes M huge and
  the acceptance rate tiny.
- ``quantile=q < 1``: M = the q-quantile of the burn-in ratios, fixed. Fakes with r >= M are always
  kept, so the accepted samples follow p_fake * min(r, M) (normalised) instead of p_fake * r: the
  same ordering of fakes, the top (1 - q) of them no longer weighted by how far above M they are,
  at an acceptance rate of E[min(r, M)] / M instead of E[r] / max r.
"""

from __future__ import annotations

import numpy as np


class RejectionSampler:
    def __init__(self, burn_in_ratios: np.ndarray, burn_in_groups: np.ndarray, n_groups: int,
                 rng: np.random.Generator, quantile: float = 1.0) -> None:
        self.quantile = quantile
        r = np.asarray(burn_in_ratios, np.float64)
        overall = float(np.quantile(r, quantile)) if len(r) else 0.0
        self.m = np.full(n_groups, max(overall, 1e-12))  # groups without burn-in: the overall bound
        for g in np.unique(burn_in_groups):
            self.m[g] = max(float(np.quantile(r[burn_in_groups == g], quantile)), 1e-12)
        self.rng = rng
        self.offered = np.zeros(n_groups, np.int64)
        self.accepted = np.zeros(n_groups, np.int64)

    def accept(self, r: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """A keep-mask. With ``quantile=1`` M is raised (per group, in order) where a ratio exceeds it."""
        u = self.rng.random(len(r))
        if self.quantile < 1.0:
            out = u <= r / self.m[groups]
        else:
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
