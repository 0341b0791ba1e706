"""BigGAN-PyTorch's discriminator (``D_arch`` and ``layers.DBlock`` in the cGAN-KD authors'
``CIFAR-100/BigGAN`` at 8fcb117), so that ``gan.arch: biggan_pytorch`` trains their CIFAR-100 GAN: their
generator (cgankd/gan/biggan_pytorch.py) against this D, both with spectral norm (``u0`` / ``sv0``) and
weights drawn from N(0, 0.02) (their ``--G_init N02 --D_init N02``). Written from what their code
describes, not copied.

- blocks: residual ``DBlock`` s, wide (the hidden width is the output's), the first without
  pre-activation; at 32 px four blocks of ``4 ch`` (the first two halve the size), from 64 px ``ch``
  doubling to ``16 ch`` with every block but the last halving; no attention (``--D_attn 0``);
- output: ReLU, a sum over positions, an SN linear, plus the projection ``<SN-embedding(y), h>``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cgankd.gan.biggan_layers import SNConv2d, SNEmbedding, SNLinear

ARCH = {32: ([4, 4, 4], [4, 4, 4, 4], [True, True, False, False]),  # x ch: in (after RGB), out, down
        64: ([1, 2, 4, 8], [1, 2, 4, 8, 16], [True] * 4 + [False]),
        128: ([1, 2, 4, 8, 16], [1, 2, 4, 8, 16, 16], [True] * 5 + [False])}


class DBlock(nn.Module):
    def __init__(self, cin: int, cout: int, preactivation: bool, down: bool) -> None:
        super().__init__()
        self.preactivation, self.down = preactivation, down
        self.conv1, self.conv2 = SNConv2d(cin, cout), SNConv2d(cout, cout)
        self.learnable_sc = cin != cout or down
        if self.learnable_sc:
            self.conv_sc = SNConv2d(cin, cout, 1, 0)

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.preactivation:  # conv, then pool
            x = self.conv_sc(x) if self.learnable_sc else x
            return F.avg_pool2d(x, 2) if self.down else x
        x = F.avg_pool2d(x, 2) if self.down else x  # pool, then conv
        return self.conv_sc(x) if self.learnable_sc else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(F.relu(x) if self.preactivation else x)))
        return (F.avg_pool2d(h, 2) if self.down else h) + self._shortcut(x)


class BigGANPyTorchD(nn.Module):
    def __init__(self, num_classes: int, resolution: int = 32, ch: int = 64, channels: int = 3) -> None:
        super().__init__()
        if resolution not in ARCH:
            raise ValueError(f"BigGAN-PyTorch discriminators here: {sorted(ARCH)} px, not {resolution}")
        ins, outs, downs = ARCH[resolution]
        ins = [channels] + [ch * k for k in ins]
        self.blocks = nn.ModuleList(nn.ModuleList([DBlock(i, ch * o, n > 0, d)])
                                    for n, (i, o, d) in enumerate(zip(ins, outs, downs, strict=True)))
        self.linear = SNLinear(ch * outs[-1], 1)
        self.embed = SNEmbedding(num_classes, ch * outs[-1])
        n02(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = x
        for (block,) in self.blocks:
            h = block(h)
        h = F.relu(h).sum(dim=[2, 3])
        return self.linear(h).squeeze(1) + (self.embed(y.long()) * h).sum(1)


def n02(module: nn.Module) -> None:
    """Their ``N02`` init: every conv, linear and embedding weight from N(0, 0.02)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Linear | nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)
