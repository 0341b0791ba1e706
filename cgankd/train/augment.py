"""Batch augmentation on tensors: random translation (pad + crop) and horizontal flip."""

from __future__ import annotations

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
