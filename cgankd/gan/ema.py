"""Exponential moving average of the generator's weights (the copy used for sampling).

Before ``start`` the copy tracks the generator exactly; after it the decay warms up as
``min(decay, (1 + k) / (10 + k))`` (k = updates since start), so a short run's average is not
dominated by the first, untrained weights. One multi-tensor (``_foreach``) op for the weights and
one for the buffers: a handful of kernels per step on the GPU, the same numbers on the CPU.
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
        mine, theirs = list(self.model.parameters()), list(source.parameters())
        if len(mine) != len(theirs):
            raise ValueError("EMA: the source has another set of parameters")
        torch._foreach_lerp_(mine, theirs, 1.0 - d)
        bufs, src = list(self.model.buffers()), list(source.buffers())
        if bufs:
            torch._foreach_copy_(bufs, src)
