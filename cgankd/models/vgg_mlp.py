"""The cGAN-KD authors' regression VGGs (UTKFace/models/vgg.py at 8fcb117; the UTKFace and Steering Angle
teachers and filter networks): conv stacks of 3x3 convs with bias, BN and ReLU, a 2x2 max-pool after
every block, the last maps flattened (512 x 2 x 2 at 64 px), then 512 and 512 (Linear, BatchNorm1d, ReLU
each) and a Linear to the output, with a ReLU for one output (the scaled label in [0, 1]).
``vgg11_mlp`` ... ``vgg19_mlp``; below 32 px a block whose maps are 1x1 already is not pooled."""

from __future__ import annotations

import torch
from torch import nn

from cgankd.models.base import Backbone, chain, scaled
from cgankd.models.vgg import CONFIGS
from cgankd.models.zoo import MODELS


class VGGMLP(Backbone):
    def __init__(self, blocks: list[list[int]], in_channels: int, num_outputs: int, resolution: int,
                 width: float) -> None:
        super().__init__()
        layers, cin, size = [], in_channels, resolution
        for block in blocks:
            mods: list[nn.Module] = []
            for c in block:
                cout = scaled(c, width)
                mods += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
                cin = cout
            if size > 1:
                mods.append(nn.MaxPool2d(2))
                size //= 2
            layers.append(nn.Sequential(*mods))
        self.blocks = nn.ModuleList(layers)
        self.feat_dim = cin * size * size
        hidden = scaled(512, width)
        self.mlp = nn.Sequential(nn.Linear(self.feat_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU())
        self.fc = nn.Linear(hidden, num_outputs)
        self.out = nn.ReLU() if num_outputs == 1 else nn.Identity()

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        return chain(x, self.blocks)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The flattened last maps (what their MLP reads)."""
        return self.stages(x)[-1].flatten(1)

    def forward(self, x: torch.Tensor, is_feat: bool = False):  # noqa: ANN201 (tensor or pair)
        maps = self.stages(x)
        out = self.out(self.fc(self.mlp(maps[-1].flatten(1))))
        return (maps, out) if is_feat else out


def _register(name: str) -> None:
    def build(in_channels: int, num_outputs: int, width: float = 1.0, resolution: int = 32) -> VGGMLP:
        return VGGMLP(CONFIGS[name], in_channels, num_outputs, resolution, width)

    MODELS.register(f"{name}_mlp")(build)


for _name in CONFIGS:
    _register(_name)
