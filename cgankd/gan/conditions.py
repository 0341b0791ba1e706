"""What each GAN step conditions on: classes drawn uniformly from the training set, or CcGAN's
vicinity around continuous labels. Both draw from one torch generator, so a resumed run repeats;
``to(device)`` moves their tables to the model's device, where a generator on that device draws."""

from __future__ import annotations

import numpy as np
import torch

from cgankd.config import GanCfg
from cgankd.gan.vicinity import VicinalBatch, Vicinity


class ClassCondition:
    """A D batch of real images with their classes; fakes at the same classes; weights 1."""

    def __init__(self, labels: np.ndarray, num_classes: int) -> None:
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.num_classes = num_classes

    def describe(self) -> dict[str, float | str]:
        return {"condition": "class", "num_classes": self.num_classes}

    def to(self, device: torch.device) -> ClassCondition:
        self.labels = self.labels.to(device)
        return self

    def d_batch(self, n: int, gen: torch.Generator) -> VicinalBatch:
        idx = torch.randint(0, len(self.labels), (n,), generator=gen, device=gen.device)
        y = self.labels[idx]
        return VicinalBatch(idx, y, None, y, None)

    def g_labels(self, n: int, gen: torch.Generator) -> torch.Tensor:
        return torch.randint(0, self.num_classes, (n,), generator=gen, device=gen.device)


def make_condition(cfg: GanCfg, labels: np.ndarray, num_classes: int | None) -> ClassCondition | Vicinity:
    """Classes for classification; for regression ``labels`` must already be scaled to [0, 1]."""
    if num_classes is not None:
        return ClassCondition(labels, num_classes)
    c = cfg.ccgan
    return Vicinity(labels, c.vicinity, c.sigma, c.kappa, c.kappa_k, c.threshold)
