"""The improved CcGAN's label embedding (Ding et al.; the cGAN-KD authors' ``train_net_for_label_embed.py``),
trained before the GAN and frozen during it (``gan.ccgan.embedding: y2h``):

1. x2y: a zoo network's penultimate features (``gan.ccgan.embed_arch``; theirs is ``resnet34_embed``) ->
   512 -> h (each a ``Linear``, ``BatchNorm1d``, ReLU; h ``dim`` wide) -> y (``Linear``, ReLU), regressing
   the scaled label from real images (MSE, random flips) for ``embed_epochs`` of ``n // embed_batch_size``
   steps (or ``embed_steps``);
2. y2h: an MLP from y to h (four ``Linear``, ``GroupNorm(8)``, ReLU layers and a ``Linear``, ReLU),
   trained with x2y's h -> y head frozen so that h2y(y2h(y')) = y' for y' = a training label plus
   N(0, 0.2) noise, clamped to [0, 1]: ``y2h_epochs`` shuffled passes over the distinct labels (or
   ``y2h_steps`` batches drawn with replacement), 128 a batch.

Both: SGD, lr 0.01, momentum 0.9, weight decay 1e-4, lr x 0.1 at each fraction in ``embed_decay_at`` /
``y2h_decay_at`` (theirs: epochs 60 and 120 of 200; 150, 250 and 350 of 500).

G conditions on y2h(y); D projects on a spectrally normalised linear map of y2h(y). Neither trains it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cgankd.base.progress import Progress
from cgankd.config import CcganCfg
from cgankd.train.augment import random_crop_flip


class Y2H(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(1, dim), nn.GroupNorm(8, dim), nn.ReLU()]
        for _ in range(3):
            layers += [nn.Linear(dim, dim), nn.GroupNorm(8, dim), nn.ReLU()]
        self.main = nn.Sequential(*layers, nn.Linear(dim, dim), nn.ReLU())
        self.dim = dim

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.main(y.float().reshape(-1, 1) + 1e-8)


class Frozen(nn.Module):
    """A trained embedding used as it is: no gradients, always in eval mode."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner.eval()
        for p in self.inner.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> Frozen:
        super().train(mode)
        self.inner.eval()
        return self

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.inner(y)


class X2Y(nn.Module):
    """A zoo backbone's penultimate features -> h through their ``x2h_res`` (512 wide, then ``dim``, each a
    Linear, BatchNorm1d and ReLU) -> y (``h2y``: Linear, ReLU)."""

    def __init__(self, backbone: nn.Module, feat_dim: int, dim: int, hidden: int = 512) -> None:
        super().__init__()
        self.backbone = backbone
        self.x2h = nn.Sequential(nn.Linear(feat_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                                 nn.Linear(hidden, dim), nn.BatchNorm1d(dim), nn.ReLU())
        self.h2y = nn.Sequential(nn.Linear(dim, 1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.h2y(self.x2h(self.backbone.features(x))).reshape(-1)


LR = 0.01  # both nets: SGD, momentum 0.9, weight decay 1e-4; lr x 0.1 at each decay mark


def _sgd(params: Iterable[nn.Parameter], steps: int, decay_at: list[float]):  # noqa: ANN202 (a pair)
    """The optimiser and its step-decay schedule (stepped once after every optimiser step)."""
    from cgankd.train.loop import step_factor

    opt = torch.optim.SGD(params, lr=LR, momentum=0.9, weight_decay=1e-4)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, step_factor(decay_at, steps))


def _y2h_batches(unique: torch.Tensor, c: CcganCfg, gen: torch.Generator) -> Iterator[torch.Tensor]:
    """Labels for each y2h step: ``y2h_epochs`` shuffled passes over the distinct labels in batches of 128
    (theirs), or ``y2h_steps`` batches of 128 drawn with replacement."""
    if c.y2h_epochs is None:
        for _ in range(c.y2h_steps):
            yield unique[torch.randint(len(unique), (Y2H_BATCH,), generator=gen, device=unique.device)]
        return
    for _ in range(c.y2h_epochs):
        yield from unique[torch.randperm(len(unique), generator=gen, device=unique.device)].split(Y2H_BATCH)


Y2H_BATCH = 128


def plan(c: CcganCfg, n_images: int, n_labels: int) -> tuple[int, int]:
    """SGD steps of x2y and of y2h: the epochs' (x2y: ``n // batch`` steps an epoch, theirs) or the steps'."""
    x2y = c.embed_steps if c.embed_epochs is None else c.embed_epochs * max(1, n_images // c.embed_batch_size)
    y2h = c.y2h_steps if c.y2h_epochs is None else c.y2h_epochs * math.ceil(n_labels / Y2H_BATCH)
    return x2y, y2h


def train_label_embedding(images: np.ndarray, labels: np.ndarray, dim: int, c: CcganCfg, seed: int,
                          device: torch.device) -> tuple[Y2H, dict[str, float]]:
    """y2h (eval mode) for uint8 ``images`` with ``labels`` scaled to [0, 1], and how well it fits: the
    x2y MSE on the training images and the y2h round-trip MSE over the label range."""
    from cgankd.models import build_model

    torch.manual_seed(seed)
    gen = torch.Generator(device=device).manual_seed(seed)
    _, ch, res, _ = images.shape
    backbone = build_model(c.embed_arch, ch, 1, res).backbone.to(device)
    with torch.no_grad():
        feat_dim = backbone.eval().features(torch.zeros(2, ch, res, res, device=device)).shape[1]
    x2y = X2Y(backbone, feat_dim, dim).to(device).train()
    x_all = torch.as_tensor(images).to(device)
    y_all = torch.as_tensor(labels, dtype=torch.float32).to(device)
    unique = torch.unique(y_all)
    steps, y2h_steps = plan(c, len(y_all), len(unique))
    opt, sched = _sgd(x2y.parameters(), steps, c.embed_decay_at)
    with Progress(steps, "label embedding (x2y)") as bar:
        for _ in range(steps):
            i = torch.randint(len(y_all), (c.embed_batch_size,), generator=gen, device=device)
            x = random_crop_flip(x_all[i].float().div(127.5).sub(1.0), 0, True, gen)
            loss = F.mse_loss(x2y(x), y_all[i])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
    x2y.eval()
    for p in x2y.parameters():
        p.requires_grad_(False)
    y2h = Y2H(dim).to(device).train()
    opt, sched = _sgd(y2h.parameters(), y2h_steps, c.y2h_decay_at)
    with Progress(y2h_steps, "label embedding (y2h)") as bar:
        for y in _y2h_batches(unique, c, gen):
            y = (y + 0.2 * torch.randn(len(y), generator=gen, device=device)).clamp(0.0, 1.0)
            loss = F.mse_loss(x2y.h2y(y2h(y)).reshape(-1), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
    y2h.eval()
    with torch.no_grad():
        grid = torch.linspace(0.0, 1.0, 101, device=device)
        fit = {"embed_x2y_mse": float(F.mse_loss(x2y(x_all[:512].float().div(127.5).sub(1.0)), y_all[:512])),
               "embed_y2h_mse": float(F.mse_loss(x2y.h2y(y2h(grid)).reshape(-1), grid))}
    return y2h, fit
