"""CcGAN's vicinal losses (Ding et al., ICLR 2021): which real images and fake labels a
discriminator step pairs with each target label, and their weights.

Labels are scaled to [0, 1]. For a target y' = y + N(0, sigma^2) drawn around a training label:
- hard vicinity (HVDL): real images with |y - y'| <= kappa, weight 1;
- soft vicinity (SVDL): real images weighted exp(-nu (y - y')^2), those with a weight below
  ``threshold`` left out.
Fake labels are drawn uniformly from the same window, with the same weights.
Rules of thumb: sigma = 1.06 std(y) n^(-1/5); kappa = |k| * the largest gap between adjacent
distinct training labels; nu = 1 / kappa^2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from cgankd.base.errors import CgankdError

KINDS = ("hard", "soft")
REDRAWS = 32  # candidate targets per D sample; P(all empty) = p^32 for a window empty with probability p


def rule_of_thumb_sigma(labels: np.ndarray) -> float:
    y = np.asarray(labels, np.float64)
    return float(1.06 * y.std() * len(y) ** (-0.2))


def rule_of_thumb_kappa(labels: np.ndarray, k: float = 1.0) -> float:
    u = np.unique(np.asarray(labels, np.float64))
    if len(u) < 2:
        raise CgankdError("training labels", "need at least two distinct labels for a vicinity")
    return float(abs(k) * np.diff(u).max())


def hard_weights(real: torch.Tensor, target: torch.Tensor | float, kappa: float) -> torch.Tensor:
    """HVDL: 1 where |y - y'| <= kappa, else 0."""
    return ((real - target).abs() <= kappa).to(real.dtype)


def soft_weights(real: torch.Tensor, target: torch.Tensor | float, nu: float) -> torch.Tensor:
    """SVDL: exp(-nu (y - y')^2)."""
    return torch.exp(-nu * (real - target) ** 2)


@dataclass
class VicinalBatch:
    real_idx: torch.Tensor  # indices into the training set
    target: torch.Tensor  # the label D is conditioned on for both halves
    real_w: torch.Tensor
    fake_labels: torch.Tensor  # labels G generates the fake half at
    fake_w: torch.Tensor


class Vicinity:
    """Draws vicinal D batches and G labels with a torch generator (so a resumed run repeats)."""

    def __init__(self, labels: np.ndarray, kind: str = "soft", sigma: float | None = None,
                 kappa: float | None = None, kappa_k: float = 1.0, threshold: float = 1e-3) -> None:
        if kind not in KINDS:
            raise CgankdError("gan.ccgan.vicinity", f"must be hard or soft, got {kind!r}")
        y = np.asarray(labels, np.float64)
        self.kind = kind
        self.sigma = rule_of_thumb_sigma(y) if sigma is None else float(sigma)
        self.kappa = rule_of_thumb_kappa(y, kappa_k) if kappa is None else float(kappa)
        self.nu = 1.0 / self.kappa**2
        # the soft window: where the weight is at least `threshold`
        self.radius = self.kappa if kind == "hard" else math.sqrt(-math.log(threshold) / self.nu)
        self.order = np.argsort(y, kind="stable")
        self.sorted = torch.as_tensor(y[self.order])
        self.order_t = torch.as_tensor(self.order)
        self.unique = torch.as_tensor(np.unique(y))

    def to(self, device: torch.device) -> Vicinity:
        """Tables on the model's device."""
        self.sorted, self.order_t, self.unique = (t.to(device) for t in (self.sorted, self.order_t, self.unique))
        return self

    def describe(self) -> dict[str, float | str]:
        return {"vicinity": self.kind, "sigma": self.sigma, "kappa": self.kappa, "nu": self.nu,
                "radius": self.radius}

    def weight(self, real: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.kind == "hard":
            return hard_weights(real, target, self.kappa)
        return soft_weights(real, target, self.nu)

    def _targets(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        dev = gen.device
        base = self.unique[torch.randint(0, len(self.unique), (n,), generator=gen, device=dev)]
        return base, base + torch.randn(n, generator=gen, dtype=torch.float64, device=dev) * self.sigma

    def _window(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lo = torch.searchsorted(self.sorted, t - self.radius, side="left")
        hi = torch.searchsorted(self.sorted, t + self.radius, side="right")
        return lo, hi

    def d_batch(self, n: int, gen: torch.Generator) -> VicinalBatch:
        """A D batch with no host sync: ``REDRAWS`` candidate targets per sample are drawn at once and
        the first whose window holds a real image is kept (else the training label itself, which always
        has a neighbour: itself), with ``torch.where`` and gathers, never a data-dependent branch or a
        boolean-mask index. The random stream is thus the same length whatever the data."""
        dev = gen.device
        base, t = self._targets(n, gen)
        noise = torch.randn(REDRAWS - 1, n, generator=gen, dtype=torch.float64, device=dev) * self.sigma
        cand = torch.cat([t[None], base[None] + noise])  # REDRAWS x n
        lo, hi = self._window(cand)
        ok = hi > lo
        first = ok.to(torch.uint8).argmax(0, keepdim=True)  # the first candidate with a neighbour (0 if none)
        t = torch.where(ok.any(0), cand.gather(0, first)[0], base)
        lo, hi = self._window(t)
        pick = lo + (torch.rand(n, generator=gen, dtype=torch.float64, device=gen.device)
                     * (hi - lo)).long().clamp_max(hi - lo - 1)
        real_idx = self.order_t[pick]
        real_y = self.sorted[pick]
        a = (t - self.radius).clamp(0.0, 1.0)
        b = (t + self.radius).clamp(0.0, 1.0)
        fake = a + (b - a) * torch.rand(n, generator=gen, dtype=torch.float64, device=gen.device)
        return VicinalBatch(real_idx, t.float(), self.weight(real_y, t).float(), fake.float(),
                            self.weight(fake, t).float())

    def g_labels(self, n: int, gen: torch.Generator) -> torch.Tensor:
        _, t = self._targets(n, gen)
        return t.clamp(0.0, 1.0).float()
