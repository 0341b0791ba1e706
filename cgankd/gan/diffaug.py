"""DiffAugment (Zhao et al. 2020): differentiable colour / translation / cutout on both D inputs."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from cgankd.base.registry import Registry

Aug = Callable[[torch.Tensor], torch.Tensor]
AUGMENTS: Registry[Aug] = Registry("diffaug policy")


@AUGMENTS.register("color")
def color(x: torch.Tensor) -> torch.Tensor:
    n = x.size(0)
    x = x + (torch.rand(n, 1, 1, 1, device=x.device) - 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device) * 2) + mean  # saturation
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device) + 0.5) + mean  # contrast


@AUGMENTS.register("translation")
def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    tx = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    ty = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    gi, gx, gy = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(h, device=x.device),
                                torch.arange(w, device=x.device), indexing="ij")
    gx = torch.clamp(gx + tx + 1, 0, h + 1)
    gy = torch.clamp(gy + ty + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])
    return padded.permute(0, 2, 3, 1)[gi, gx, gy].permute(0, 3, 1, 2).contiguous()


@AUGMENTS.register("cutout")
def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ox = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    oy = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    # the zeroed square by comparison, not by an indexed write of a host scalar: rows top..top+ch-1 and
    # columns left..left+cw-1 (it always overlaps the image, so this is what clamped indices zeroed)
    top, left = ox - ch // 2, oy - cw // 2
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    hole = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)
    mask = (~hole).to(x.dtype)
    return x * mask.unsqueeze(1)


def parse_policy(policy: str) -> list[Aug]:
    return [AUGMENTS.get(p.strip()) for p in policy.split(",") if p.strip()]


def diff_augment(x: torch.Tensor, augs: list[Aug]) -> torch.Tensor:
    for aug in augs:
        x = aug(x)
    return x
