"""A generator whose state dict is BigGAN-PyTorch's BigGAN-deep (Brock et al.; the cGAN-KD authors'
ImageNet-100 GAN, ``ImageNet-100/make_fake_datasets/models/BigGANdeep.py`` at 8fcb117, built by their
``main.py`` with G_ch 128, G_depth 2, dim_z 128, 128 px, attention at 64, G_shared with shared_dim 128
and hierarchical z), so that their released ``BigGAN_deep_96K/G_ema.pth`` loads and samples here.

Written from the architecture their code describes, not copied. Names and shapes:

- ``shared``: the class embedding, ``n_classes x shared_dim``; G reads ``c = [shared(y), z]`` (hier);
- ``linear``: SN linear ``dim_z + shared_dim -> 16 * in_channels[0]`` (a 4x4 start);
- ``blocks.<i>.0`` and ``blocks.<i>.1``: bottleneck residual blocks (``conv1`` 1x1 to a quarter of the
  input width, ``conv2`` / ``conv3`` 3x3, ``conv4`` 1x1 out; ``bn1``..``bn4`` conditional BNs whose
  ``gain`` / ``bias`` are bias-free SN linears of ``c``); the second of each pair up-samples and keeps
  the first channels of its input as the shortcut; ``blocks.<i>.2``: attention at the named size
  (``theta``, ``phi``, ``g``, ``o``: bias-free SN 1x1 convs; ``gamma``, a scalar);
- ``output_layer``: BN, ReLU, SN 3x3 conv to RGB.

Spectral norm as BigGAN-PyTorch's (``u0`` / ``sv0``; cgankd/gan/biggan_layers.py), eval mode keeps ``u0``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cgankd.gan.biggan_layers import BN, CondBN, SNConv2d, SNLinear

# x ch: in / out channels of each stage (each stage doubles the size)
WIDTHS = {64: ([16, 16, 8, 4], [16, 8, 4, 2]), 128: ([16, 16, 8, 4, 2], [16, 8, 4, 2, 1]),
          256: ([16, 16, 8, 8, 4, 2], [16, 8, 8, 4, 2, 1])}
RATIO = 4  # a block's hidden width: its input's / 4


def _ccbn(channels: int, cond: int) -> CondBN:
    return CondBN(channels, SNLinear(cond, channels, bias=False), SNLinear(cond, channels, bias=False))


class DeepBlock(nn.Module):
    def __init__(self, cin: int, cout: int, cond: int, up: bool) -> None:
        super().__init__()
        hidden, self.cout, self.up = cin // RATIO, cout, up
        self.conv1, self.conv4 = SNConv2d(cin, hidden, 1, 0), SNConv2d(hidden, cout, 1, 0)
        self.conv2, self.conv3 = SNConv2d(hidden, hidden), SNConv2d(hidden, hidden)
        self.bn1, self.bn2 = _ccbn(cin, cond), _ccbn(hidden, cond)
        self.bn3, self.bn4 = _ccbn(hidden, cond), _ccbn(hidden, cond)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn2(self.conv1(F.relu(self.bn1(x, c))), c))
        x = x[:, :self.cout]
        if self.up:
            h, x = F.interpolate(h, scale_factor=2.0), F.interpolate(x, scale_factor=2.0)
        h = self.conv3(F.relu(self.bn3(self.conv2(h), c)))
        return self.conv4(F.relu(self.bn4(h, c))) + x


class Attention(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.theta, self.phi = SNConv2d(ch, ch // 8, 1, 0, bias=False), SNConv2d(ch, ch // 8, 1, 0, bias=False)
        self.g, self.o = SNConv2d(ch, ch // 2, 1, 0, bias=False), SNConv2d(ch // 2, ch, 1, 0, bias=False)
        self.gamma = nn.Parameter(torch.tensor(0.0))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        n, ch, h, w = x.shape
        theta = self.theta(x).reshape(n, ch // 8, h * w)
        phi = F.max_pool2d(self.phi(x), 2).reshape(n, ch // 8, h * w // 4)
        g = F.max_pool2d(self.g(x), 2).reshape(n, ch // 2, h * w // 4)
        beta = torch.softmax(theta.transpose(1, 2) @ phi, -1)
        return self.gamma * self.o((g @ beta.transpose(1, 2)).reshape(n, ch // 2, h, w)) + x


class BigGANDeepG(nn.Module):
    def __init__(self, num_classes: int, resolution: int = 128, ch: int = 128, z_dim: int = 128,
                 shared_dim: int = 128, attention: int = 64) -> None:
        super().__init__()
        if resolution not in WIDTHS:
            raise ValueError(f"BigGAN-deep generators here: {sorted(WIDTHS)} px, not {resolution}")
        ins, outs = ([ch * k for k in w] for w in WIDTHS[resolution])
        self.num_classes, self.z_dim, self.resolution, self.ch = num_classes, z_dim, resolution, ch
        cond = z_dim + shared_dim
        self.shared = nn.Embedding(num_classes, shared_dim)
        self.linear = SNLinear(cond, ins[0] * 16)
        stages = []
        for i, (cin, cout) in enumerate(zip(ins, outs, strict=True)):
            stage: list[nn.Module] = [DeepBlock(cin, cin, cond, False), DeepBlock(cin, cout, cond, True)]
            if 8 * 2**i == attention:
                stage.append(Attention(cout))
            stages.append(nn.ModuleList(stage))
        self.blocks = nn.ModuleList(stages)
        self.output_layer = nn.Sequential(BN(outs[-1]), nn.ReLU(), SNConv2d(outs[-1], 3))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        c = torch.cat([self.shared(y.long()), z], 1)
        h = self.linear(c).reshape(len(z), -1, 4, 4)
        for stage in self.blocks:
            for block in stage:
                h = block(h, c)
        return torch.tanh(self.output_layer(h))


def architecture(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """num_classes, resolution, ch, z_dim, shared_dim and attention from a state dict's shapes
    (``KeyError``: not a BigGAN-deep generator)."""
    n_stages = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    resolution = 4 * 2**n_stages
    if resolution not in WIDTHS:
        raise ValueError(f"{n_stages} stages ({resolution} px); this loader knows {sorted(WIDTHS)} px")
    n_classes, shared_dim = state["shared.weight"].shape
    attn = [int(k.split(".")[1]) for k in state if k.startswith("blocks.") and k.endswith(".2.gamma")]
    return {"num_classes": int(n_classes), "resolution": resolution, "shared_dim": int(shared_dim),
            "ch": int(state["output_layer.0.gain"].shape[0]) // WIDTHS[resolution][1][-1],
            "z_dim": int(state["linear.weight"].shape[1]) - int(shared_dim),
            "attention": 8 * 2 ** attn[0] if attn else 0}
