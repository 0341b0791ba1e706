"""Exponential moving average of the generator's weights (the copy used for sampling).

Before ``start`` the copy tracks the generator exactly; after it the decay warms up as
``min(decay, (1 + k) / (10 + k))`` (k = updates since start), so a short run's average is not
dominated by the first, untrained weights.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, decay: float, start: int) -> None:
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.start = start

    @torch.no_grad()
    def update(self, source: nn.Module, step: int) -> None:
        k = step - self.start
        d = min(self.decay, (1 + k) / (10 + k)) if k >= 0 else 0.0
        for e, s in zip(self.model.parameters(), source.parameters(), strict=True):
            e.lerp_(s, 1.0 - d)
        for e, s in zip(self.model.buffers(), source.buffers(), strict=True):
            e.copy_(s)
