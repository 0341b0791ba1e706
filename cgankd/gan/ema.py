"""Exponential moving average of the generator's weights (the copy used for sampling).

Before ``start`` the copy tracks the generator exactly; after it the decay warms up as
``min(decay, (1 + k) / (10 + k))`` (k = updates since start), so a short run's average is not
dominated by the first, untrained weights. Eager: one multi-tensor (``_foreach``) op for the
weights and one for the buffers, a handful of kernels per step on the GPU. With ``compile`` the
update is one compiled function (a few fused kernels on any device), never a CUDA graph (it updates
its inputs in place). Its weight is a device scalar filled in place each step, so that the changing
decay neither recompiles it nor copies a new tensor from the host (a blocking copy on CUDA).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from cgankd.compute.device import CPU, Runtime


def _blend(mine: list[torch.Tensor], theirs: list[torch.Tensor], bufs: list[torch.Tensor],
           src: list[torch.Tensor], weight: torch.Tensor) -> None:
    for m, t in zip(mine, theirs, strict=True):
        m.lerp_(t, weight)
    for b, s in zip(bufs, src, strict=True):
        b.copy_(s)


class EMA:
    def __init__(self, model: nn.Module, decay: float, start: int, runtime: Runtime = CPU) -> None:
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.start = start
        self.runtime = runtime
        self._blend = runtime.compiled(_blend, graphs=False) if runtime.compile else None
        self._weight = torch.zeros((), device=runtime.device)  # 1 - decay, filled in place

    @torch.no_grad()
    def update(self, source: nn.Module, step: int) -> None:
        k = step - self.start
        d = min(self.decay, (1 + k) / (10 + k)) if k >= 0 else 0.0
        mine, theirs = list(self.model.parameters()), list(source.parameters())
        if len(mine) != len(theirs):
            raise ValueError("EMA: the source has another set of parameters")
        bufs, src = list(self.model.buffers()), list(source.buffers())
        if self._blend is not None:
            self._blend(mine, theirs, bufs, src, self._weight.fill_(1.0 - d))
            return
        torch._foreach_lerp_(mine, theirs, 1.0 - d)
        if bufs:
            torch._foreach_copy_(bufs, src)
