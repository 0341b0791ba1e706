"""Batch augmentation on tensors: random translation (pad + crop) or a random resized crop, and a
horizontal flip. Random numbers come from a generator on the batch's device: no host sync."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_crop_flip(x: torch.Tensor, pad: int, flip: bool, gen: torch.Generator) -> torch.Tensor:
    """Per-sample random crop of a reflect-padded batch, and a random horizontal flip. Random
    numbers come from ``gen`` on its own device (the batch's, on a GPU)."""
    n, _, h, w = x.shape
    if pad > 0:
        padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen, device=gen.device)
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen, device=gen.device)
        rows = (dy[:, None] + torch.arange(h, device=gen.device)[None]).to(x.device)  # n x h
        cols = (dx[:, None] + torch.arange(w, device=gen.device)[None]).to(x.device)  # n x w
        idx_n = torch.arange(n, device=x.device)[:, None, None]
        x = padded.permute(0, 2, 3, 1)[idx_n, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if flip:
        mask = (torch.rand(n, generator=gen, device=gen.device) < 0.5).to(x.device)
        x = torch.where(mask[:, None, None, None], x.flip(3), x)
    return x.contiguous()


def random_resized_crop(x: torch.Tensor, gen: torch.Generator, scale: tuple[float, float] = (0.08, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """torchvision's ``RandomResizedCrop(size)`` for a whole batch (the cGAN-KD authors' ImageNet-100
    training transform): per sample, an area of ``scale`` of the image at an aspect ratio drawn
    log-uniformly from ``ratio``, at a uniform position, resized back bilinearly. Where torchvision
    redraws a box that does not fit (up to 10 times, then a centre crop), this clamps it to the image."""
    n, _, h, w = x.shape
    dev = gen.device
    area = torch.empty(n, device=dev).uniform_(*scale, generator=gen)
    log_r = torch.empty(n, device=dev).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=gen)
    r = torch.exp(log_r)
    cw, ch = torch.sqrt(area * r).clamp(max=1.0), torch.sqrt(area / r).clamp(max=1.0)  # fractions of w, h
    cx = (torch.rand(n, generator=gen, device=dev) * (1 - cw) + cw / 2) * 2 - 1  # box centre in [-1, 1]
    cy = (torch.rand(n, generator=gen, device=dev) * (1 - ch) + ch / 2) * 2 - 1
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = cw, cx, ch, cy
    grid = F.affine_grid(theta.to(x.device, x.dtype), [n, x.shape[1], h, w], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

