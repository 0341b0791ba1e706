"""Regression feature extractor: a sparse autoencoder with a label-prediction head (cDR-RS).

Encoder (3 stride-2 convolutions -> a ReLU code of ``feat_dim``) -> decoder back to the image,
plus a small head predicting the scaled label from the code. Loss: reconstruction MSE +
``sparsity`` x mean |code| + label MSE. The code is the feature.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cgankd.base.progress import Progress
from cgankd.data.prepared import Meta, Split
from cgankd.train.augment import random_crop_flip
from cgankd.train.data import targets, to_float


class SparseAE(nn.Module):
    def __init__(self, channels: int, resolution: int, feat_dim: int = 64, width: int = 32) -> None:
        super().__init__()
        self.channels, self.resolution, self.feat_dim = channels, resolution, feat_dim
        s = resolution // 8
        self.shape = (4 * width, s, s)
        self.enc = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.Conv2d(2 * width, 4 * width, 4, 2, 1), nn.BatchNorm2d(4 * width), nn.ReLU(),
            nn.Flatten(), nn.Linear(4 * width * s * s, feat_dim), nn.ReLU())
        self.dec_fc = nn.Linear(feat_dim, 4 * width * s * s)
        self.dec = nn.Sequential(
            nn.ReLU(), nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Sigmoid())
        self.head = nn.Sequential(nn.Linear(feat_dim, 64), nn.ReLU(), nn.Linear(64, 1))

    def features(self, x01: torch.Tensor) -> torch.Tensor:
        return self.enc(x01 * 2.0 - 1.0)

    @staticmethod
    def target(x01: torch.Tensor) -> torch.Tensor:
        """What the reconstruction (a sigmoid) is compared with: the image in [0, 1]."""
        return x01

    def forward(self, x01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.features(x01)
        return h, self.dec(self.dec_fc(h).reshape(-1, *self.shape)), self.head(h).reshape(-1)


@dataclass(frozen=True)
class AeTraining:
    """How an autoencoder trains (cgankd/features/autoencoders.py makes one per ``extractor.ae``)."""

    steps: int
    batch_size: int
    sparsity: float
    optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
    lr_factor: Callable[[int], float] = lambda step: 1.0  # the lr's multiplier at a step (from 0)
    balanced: bool = False  # a distinct label drawn uniformly, then one of its images (theirs)
    flip: bool = False  # random horizontal flips


def _balanced(labels: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` indices: a distinct label uniformly, then an image of it uniformly (no host sync)."""
    order = torch.argsort(labels, stable=True)
    unique, counts = torch.unique_consecutive(labels[order], return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    k = torch.randint(len(unique), (n,), generator=gen, device=labels.device)
    offset = (torch.rand(n, generator=gen, device=labels.device) * counts[k]).long().clamp_max(counts[k] - 1)
    return order[starts[k] + offset]


def train_sparse_ae(model: nn.Module, train: Split, meta: Meta, how: AeTraining, seed: int,
                    desc: str = "train-extractor") -> list[dict[str, float]]:
    """Trains on the model's device; the loss parts are read from it once per history row."""
    torch.manual_seed(seed)
    dev = next(model.parameters()).device
    gen = torch.Generator(device=dev).manual_seed(seed)
    x, y = to_float(train.images).to(dev), targets(train.labels, meta).to(dev)
    opt = how.optimizer(model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, how.lr_factor)
    history: list[dict[str, float]] = []
    model.train()
    avg: dict[str, float] = {}
    pending: list[torch.Tensor] = []  # per step: recon, sparsity, label, loss
    steps, sparsity = how.steps, how.sparsity
    with Progress(steps, desc) as bar:
        for step in range(1, steps + 1):
            i = (_balanced(y, how.batch_size, gen) if how.balanced else
                 torch.randint(len(x), (how.batch_size,), generator=gen, device=dev))
            xb = random_crop_flip(x[i], 0, True, gen) if how.flip else x[i]
            h, recon, pred = model(xb)
            parts = {"recon": F.mse_loss(recon, model.target(xb)), "sparsity": h.abs().mean(),
                     "label": F.mse_loss(pred, y[i])}
            loss = parts["recon"] + sparsity * parts["sparsity"] + parts["label"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            pending.append(torch.stack([*(v.detach() for v in parts.values()), loss.detach()]))
            bar.update(1)
            if step % max(steps // 10, 1) == 0 or step == steps:
                rows = torch.stack(pending).tolist()
                for row in rows:
                    avg = {k: (0.9 * avg[k] + 0.1 * v) if avg else v for k, v in zip(parts, row[:-1], strict=True)}
                pending.clear()
                bar.update(0, loss=rows[-1][-1])
                history.append({"step": step, **avg})
    model.eval()
    return history
