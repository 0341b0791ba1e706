"""Label embeddings for the conditional GANs: a lookup table for classes, a small MLP on
sinusoidal features for a continuous label y in [0, 1] (CcGAN with a learned embedding)."""

from __future__ import annotations

import math

import torch
from torch import nn

from cgankd.gan.spectral import spectral_norm as SN


class LabelEmbed(nn.Module):
    """y in [0, 1] -> R^dim: [y, sin(2^k pi y), cos(2^k pi y)] -> Linear -> ReLU -> Linear.

    The sinusoids let nearby labels map to distinguishable embeddings without a separate
    pre-trained label network; spectral norm on both layers when used inside D.
    """

    def __init__(self, dim: int, n_freq: int = 6, hidden: int = 128, sn: bool = False) -> None:
        super().__init__()
        wrap = SN if sn else (lambda m: m)
        self.register_buffer("freqs", (2.0 ** torch.arange(n_freq)) * math.pi, persistent=False)
        self.net = nn.Sequential(wrap(nn.Linear(1 + 2 * n_freq, hidden)), nn.ReLU(),
                                 wrap(nn.Linear(hidden, dim)))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        y = y.float().reshape(-1, 1)
        f = y * self.freqs
        return self.net(torch.cat([y, torch.sin(f), torch.cos(f)], 1))


def label_embedding(num_classes: int | None, dim: int, sn: bool = False) -> nn.Module:
    """``num_classes`` None means a continuous label (regression)."""
    if num_classes is None:
        return LabelEmbed(dim, sn=sn)
    table = nn.Embedding(num_classes, dim)
    return SN(table) if sn else table
