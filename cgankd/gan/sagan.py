"""The SAGAN-size CcGAN the cGAN-KD authors train for UTKFace and Steering Angle (``gan.arch: sagan``;
their ``UTKFace/models/SAGAN.py`` at 8fcb117, after voletiv's self-attention-GAN): written from the
architecture their code describes, not copied, with their module names, so that their released
generator's state dict loads here (cgankd/gan/ccgan_release.py).

- G: an SN linear from z to ``16 ch`` at 4x4 (64 px; ``2^n ch`` for n up-blocks), up-blocks
  ``block1..blockn`` halving the width (conditional BN without affine whose gain and bias are
  linear maps of the label embedding, ``out + gamma * out + beta``; nearest up-sampling; a learnt
  1x1 shortcut), self-attention before the last block, BN, ReLU, an SN 3x3 conv and tanh. The
  conditional BNs read the embedding only (not z).
- D: an optimised first block to ``ch``, self-attention, blocks doubling the width down to 4x4 (the
  last keeps 4x4), ReLU, then an SN linear of the flattened features plus the projection
  ``<SN-Linear(embedding), features>``.
- Every SN layer is torch's spectral norm (``weight_orig`` / ``_u`` / ``_v``; cgankd/gan/spectral.py);
  weights start Xavier-uniform, biases at 0, as theirs.

The label embedding is cgankd's (module ``embed``): the frozen y2h net (``gan.ccgan.embedding: y2h``,
the authors' choice), the sinusoid MLP, or a class table. ``label_map`` (``a, b``: y -> a y + b) turns
cgankd's scaled label into the one a loaded generator was trained on (1, 0 for one trained here).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cgankd.gan.embed import label_embedding
from cgankd.gan.label_embed import Frozen
from cgankd.gan.spectral import spectral_norm as SN


def _xavier(module: nn.Module) -> None:
    for m in module.modules():
        if type(m) in (nn.Linear, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _conv(cin: int, cout: int, k: int) -> nn.Module:
    return SN(nn.Conv2d(cin, cout, k, 1, k // 2))


class SelfAttention(nn.Module):
    """theta / phi at ch/8, g at ch/2 (phi and g max-pooled by 2), softmax over positions, an SN 1x1
    back to ch, added with a learnt ``sigma`` that starts at 0."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.snconv1x1_theta, self.snconv1x1_phi = _conv(ch, ch // 8, 1), _conv(ch, ch // 8, 1)
        self.snconv1x1_g, self.snconv1x1_attn = _conv(ch, ch // 2, 1), _conv(ch // 2, ch, 1)
        self.sigma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, ch, h, w = x.shape
        theta = self.snconv1x1_theta(x).reshape(n, ch // 8, h * w)
        phi = F.max_pool2d(self.snconv1x1_phi(x), 2).reshape(n, ch // 8, h * w // 4)
        attn = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)  # n x hw x hw/4
        g = F.max_pool2d(self.snconv1x1_g(x), 2).reshape(n, ch // 2, h * w // 4)
        return x + self.sigma * self.snconv1x1_attn((g @ attn.transpose(1, 2)).reshape(n, ch // 2, h, w))


class CondBN(nn.Module):
    def __init__(self, channels: int, dim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, momentum=0.001, affine=False)
        self.embed_gamma = nn.Linear(dim, channels, bias=False)
        self.embed_beta = nn.Linear(dim, channels, bias=False)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        out = self.bn(x)
        return out + self.embed_gamma(h)[:, :, None, None] * out + self.embed_beta(h)[:, :, None, None]


class GenBlock(nn.Module):
    def __init__(self, cin: int, cout: int, dim: int) -> None:
        super().__init__()
        self.cond_bn1, self.cond_bn2 = CondBN(cin, dim), CondBN(cout, dim)
        self.snconv2d1, self.snconv2d2 = _conv(cin, cout, 3), _conv(cout, cout, 3)
        self.snconv2d0 = _conv(cin, cout, 1)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        y = F.interpolate(F.relu(self.cond_bn1(x, h)), scale_factor=2.0, mode="nearest")
        y = self.snconv2d2(F.relu(self.cond_bn2(self.snconv2d1(y), h)))
        return y + self.snconv2d0(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def _steps(resolution: int) -> int:
    n = int(math.log2(resolution // 4)) if resolution >= 8 else 0
    if n < 1 or 4 * 2**n != resolution:
        raise ValueError(f"the SAGAN needs a power-of-two resolution from 8 px, not {resolution}")
    return n


class Generator(nn.Module):
    def __init__(self, num_classes: int | None, resolution: int, channels: int, z_dim: int = 256, ch: int = 64,
                 embed_dim: int = 128, y2h: nn.Module | None = None) -> None:
        super().__init__()
        n = _steps(resolution)
        self.z_dim, self.num_classes, self.n_blocks, self.ch = z_dim, num_classes, n, ch
        self.snlinear0 = SN(nn.Linear(z_dim, ch * 2**n * 16))
        for i in range(1, n + 1):
            if i == n:
                self.self_attn = SelfAttention(ch * 2)
            setattr(self, f"block{i}", GenBlock(ch * 2 ** (n - i + 1), ch * 2 ** (n - i), embed_dim))
        self.bn = nn.BatchNorm2d(ch, eps=1e-5, momentum=0.0001, affine=True)
        self.snconv2d1 = _conv(ch, channels, 3)
        _xavier(self)
        self.embed = Frozen(y2h) if y2h is not None else label_embedding(num_classes, embed_dim)
        self.register_buffer("label_map", torch.tensor([1.0, 0.0]))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.num_classes is None:
            y = y.float() * self.label_map[0] + self.label_map[1]
        h = self.embed(y)
        out = self.snlinear0(z).reshape(len(z), -1, 4, 4)
        for i in range(1, self.n_blocks + 1):
            if i == self.n_blocks:
                out = self.self_attn(out)
            out = getattr(self, f"block{i}")(out, h)
        return torch.tanh(self.snconv2d1(F.relu(self.bn(out))))


class DiscOptBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.snconv2d1, self.snconv2d2 = _conv(cin, cout, 3), _conv(cout, cout, 3)
        self.snconv2d0 = _conv(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.avg_pool2d(self.snconv2d2(F.relu(self.snconv2d1(x))), 2)
        return y + self.snconv2d0(F.avg_pool2d(x, 2))


class DiscBlock(nn.Module):
    def __init__(self, cin: int, cout: int, down: bool) -> None:
        super().__init__()
        self.down = down
        self.snconv2d1, self.snconv2d2 = _conv(cin, cout, 3), _conv(cout, cout, 3)
        self.snconv2d0 = _conv(cin, cout, 1)  # theirs always has it; used when down or widths differ

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.snconv2d2(F.relu(self.snconv2d1(F.relu(x))))
        if not self.down:
            return y + (self.snconv2d0(x) if x.shape[1] != y.shape[1] else x)
        return F.avg_pool2d(y, 2) + F.avg_pool2d(self.snconv2d0(x), 2)


class Discriminator(nn.Module):
    def __init__(self, num_classes: int | None, resolution: int, channels: int, ch: int = 64,
                 embed_dim: int = 128, y2h: nn.Module | None = None) -> None:
        super().__init__()
        n = _steps(resolution)  # blocks after the first: n - 1 halve the size, the last keeps 4x4
        self.num_classes, self.n_blocks, self.flat = num_classes, n, ch * 2**n * 16
        self.opt_block1 = DiscOptBlock(channels, ch)
        self.self_attn = SelfAttention(ch)
        for i in range(1, n + 1):
            setattr(self, f"block{i}", DiscBlock(ch * 2 ** (i - 1), ch * 2**i, down=i < n))
        self.snlinear1 = SN(nn.Linear(self.flat, 1))
        self.sn_embedding1 = SN(nn.Linear(embed_dim, self.flat, bias=False))
        _xavier(self)
        self.embed = Frozen(y2h) if y2h is not None else label_embedding(num_classes, embed_dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = self.self_attn(self.opt_block1(x))
        for i in range(1, self.n_blocks + 1):
            out = getattr(self, f"block{i}")(out)
        out = F.relu(out).reshape(len(x), self.flat)
        return self.snlinear1(out).squeeze(1) + (self.sn_embedding1(self.embed(y)) * out).sum(1)
