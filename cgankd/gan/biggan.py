"""A small BigGAN-style conditional G and a projection D, both spectrally normalised.

The condition is a class (``num_classes`` an int) or a continuous label in [0, 1]
(``num_classes`` None, the CcGAN case); see ``embed.py``.
G: z and a shared label embedding are concatenated and feed every conditional batch norm;
residual up-blocks from 4x4 to the output size. D: residual down-blocks, ReLU, global sum pool,
a linear output plus the projection term <embed(y), h>. With a trained label embedding ``y2h``
(cgankd/gan/label_embed.py) G conditions on y2h(y) and D projects on SN-Linear(y2h(y)), y2h frozen.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cgankd.gan.embed import label_embedding
from cgankd.gan.label_embed import Frozen
from cgankd.gan.spectral import spectral_norm as SN


class CondBN(nn.Module):
    def __init__(self, channels: int, cond_dim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = SN(nn.Linear(cond_dim, channels, bias=False))
        self.bias = SN(nn.Linear(cond_dim, channels, bias=False))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.bn(x) * (1 + self.gain(c))[:, :, None, None] + self.bias(c)[:, :, None, None]


class GBlock(nn.Module):
    def __init__(self, cin: int, cout: int, cond_dim: int) -> None:
        super().__init__()
        self.bn1, self.bn2 = CondBN(cin, cond_dim), CondBN(cout, cond_dim)
        self.conv1 = SN(nn.Conv2d(cin, cout, 3, 1, 1))
        self.conv2 = SN(nn.Conv2d(cout, cout, 3, 1, 1))
        self.short = SN(nn.Conv2d(cin, cout, 1))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, c)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), c)))
        return h + self.short(F.interpolate(x, scale_factor=2))


class Generator(nn.Module):
    def __init__(self, num_classes: int | None, resolution: int, channels: int, z_dim: int = 64,
                 ch: int = 32, embed_dim: int = 64, y2h: nn.Module | None = None) -> None:
        super().__init__()
        n_up = int(math.log2(resolution // 4))
        widths = [ch * min(2 ** (n_up - i), 4) for i in range(n_up + 1)]  # e.g. 128, 128, 64, 32
        self.z_dim, self.num_classes = z_dim, num_classes
        self.embed = Frozen(y2h) if y2h is not None else label_embedding(num_classes, embed_dim)
        cond = z_dim + embed_dim
        self.fc = SN(nn.Linear(z_dim, widths[0] * 16))
        self.blocks = nn.ModuleList(GBlock(widths[i], widths[i + 1], cond) for i in range(n_up))
        self.out = nn.Sequential(nn.BatchNorm2d(widths[-1]), nn.ReLU(),
                                 SN(nn.Conv2d(widths[-1], channels, 3, 1, 1)), nn.Tanh())
        self.w0 = widths[0]

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        c = torch.cat([z, self.embed(y)], 1)
        h = self.fc(z).view(z.size(0), self.w0, 4, 4)
        for block in self.blocks:
            h = block(h, c)
        return self.out(h)


class DBlock(nn.Module):
    def __init__(self, cin: int, cout: int, first: bool) -> None:
        super().__init__()
        self.first = first
        self.conv1 = SN(nn.Conv2d(cin, cout, 3, 1, 1))
        self.conv2 = SN(nn.Conv2d(cout, cout, 3, 1, 1))
        self.short = SN(nn.Conv2d(cin, cout, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = F.avg_pool2d(self.conv2(F.relu(self.conv1(h))), 2)
        s = F.avg_pool2d(self.short(x), 2) if self.first else self.short(F.avg_pool2d(x, 2))
        return h + s


class Discriminator(nn.Module):
    def __init__(self, num_classes: int | None, resolution: int, channels: int, ch: int = 32,
                 y2h: nn.Module | None = None) -> None:
        super().__init__()
        n_down = int(math.log2(resolution // 4))
        widths = [channels] + [ch * min(2**i, 4) for i in range(n_down)]
        self.blocks = nn.Sequential(*(DBlock(widths[i], widths[i + 1], i == 0) for i in range(n_down)))
        self.fc = SN(nn.Linear(widths[-1], 1))
        self.embed = (nn.Sequential(Frozen(y2h), SN(nn.Linear(y2h.dim, widths[-1]))) if y2h is not None
                      else label_embedding(num_classes, widths[-1], sn=True))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.blocks(x)).sum(dim=[2, 3])
        return self.fc(h).squeeze(1) + (self.embed(y) * h).sum(1)
