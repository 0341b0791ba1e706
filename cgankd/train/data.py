"""Tensors from the prepared format, and a batch sampler that mixes real and fake images."""

from __future__ import annotations

import numpy as np
import torch

from cgankd.data.prepared import Meta
from cgankd.task import task_of


def to_float(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 N x C x H x W -> float32 in [0, 1] (the model input contract)."""
    t = torch.as_tensor(images)
    return t.float().div_(255.0)


def targets(labels: np.ndarray, meta: Meta) -> torch.Tensor:
    """Training targets: class indices, or labels scaled to [0, 1] for regression."""
    if task_of(meta.task).categorical:
        return torch.as_tensor(np.asarray(labels), dtype=torch.long)
    return torch.as_tensor(meta.scale(labels), dtype=torch.float32)


class EpochSampler:
    """Draws batches of indices without replacement, reshuffling at each pass."""

    def __init__(self, n: int, gen: torch.Generator) -> None:
        self.n = n
        self.gen = gen
        self.perm = torch.randperm(n, generator=gen, device=gen.device)
        self.pos = 0

    def take(self, k: int) -> torch.Tensor:
        out = []
        while k > 0:
            if self.pos >= self.n:
                self.perm = torch.randperm(self.n, generator=self.gen, device=self.gen.device)
                self.pos = 0
            chunk = self.perm[self.pos:self.pos + k]
            self.pos += len(chunk)
            k -= len(chunk)
            out.append(chunk)
        return torch.cat(out)
