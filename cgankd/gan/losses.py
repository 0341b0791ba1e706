"""Hinge loss (the BigGAN / SNGAN choice), optionally weighted per sample (CcGAN's SVDL)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def d_hinge(real: torch.Tensor, fake: torch.Tensor, real_w: torch.Tensor | None = None,
            fake_w: torch.Tensor | None = None) -> torch.Tensor:
    lr, lf = F.relu(1.0 - real), F.relu(1.0 + fake)
    if real_w is not None:
        lr = lr * real_w
    if fake_w is not None:
        lf = lf * fake_w
    return lr.mean() + lf.mean()


def g_hinge(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()
