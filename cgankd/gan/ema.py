"""Exponential moving average of the generator's weights (the copy used for sampling)."""

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
        d = self.decay if step >= self.start else 0.0
        for e, s in zip(self.model.parameters(), source.parameters(), strict=True):
            e.lerp_(s, 1.0 - d)
        for e, s in zip(self.model.buffers(), source.buffers(), strict=True):
            e.copy_(s)
