"""The cGAN-KD authors' sparse autoencoder for cDR-RS on regression (``extractor.ae: paper``; their
``UTKFace/models/autoencoder_extract.py`` at 8fcb117), written from the architecture their code describes:

- encoder: four stages of a 4x4 stride-2 conv then a 3x3 conv (``ch``, ``ch``, ``2 ch``, ``4 ch`` wide,
  each with BatchNorm and ReLU) down to 1/16 of the size (4x4 at 64 px), flattened, then a Linear + ReLU
  to the code: ``feat_dim`` values, C x H x W by default (their 12,288 at 64 px);
- decoder: a Linear + BatchNorm1d + ReLU back to ``4 ch`` x 4 x 4, four stages of a 4x4 transposed conv
  then a 3x3 conv (each with BatchNorm and ReLU), and a 1x1 conv with tanh: the image in [-1, 1];
- label head: 1,024, 512 and 256 wide (Linear, BatchNorm1d, ReLU each), then Linear + ReLU to the label.

Their loss is MSE(reconstruction, image in [-1, 1]) + sparsity x mean(code) + MSE(label); the code is
ReLU'd, so its mean is its mean absolute value (cgankd/features/sparse_ae.py trains both autoencoders).
"""

from __future__ import annotations

import torch
from torch import nn

from cgankd.models.base import scaled

DOWN = 4  # stride-2 stages: the code's spatial start is resolution / 16


def _bn_relu(conv: nn.Module, c: int) -> list[nn.Module]:
    return [conv, nn.BatchNorm2d(c), nn.ReLU(True)]


class PaperSparseAE(nn.Module):
    def __init__(self, channels: int, resolution: int, feat_dim: int | None = None, width: float = 1.0,
                 ch: int = 64) -> None:
        super().__init__()
        if resolution < 2**DOWN or resolution % 2**DOWN:
            raise ValueError(f"the authors' sparse autoencoder needs a multiple of 16 px, not {resolution}")
        ch = scaled(ch, width)
        self.channels, self.resolution = channels, resolution
        self.feat_dim = feat_dim or channels * resolution * resolution
        s = resolution // 2**DOWN
        self.shape = (4 * ch, s, s)
        widths = [(channels, ch, ch), (ch, ch, 2 * ch), (2 * ch, 2 * ch, 4 * ch), (4 * ch, 4 * ch, 4 * ch)]
        self.conv = nn.Sequential(*(m for cin, mid, cout in widths for m in
                                    _bn_relu(nn.Conv2d(cin, mid, 4, 2, 1), mid) +
                                    _bn_relu(nn.Conv2d(mid, cout, 3, 1, 1), cout)))
        flat = 4 * ch * s * s
        self.fc = nn.Sequential(nn.Linear(flat, self.feat_dim), nn.ReLU())
        self.dec_fc = nn.Sequential(nn.Linear(self.feat_dim, flat), nn.BatchNorm1d(flat), nn.ReLU(True))
        back = [(4 * ch, 4 * ch, 2 * ch), (2 * ch, 2 * ch, ch), (ch, ch, ch), (ch, ch, ch)]
        self.deconv = nn.Sequential(*(m for cin, mid, cout in back for m in
                                      _bn_relu(nn.ConvTranspose2d(cin, mid, 4, 2, 1), mid) +
                                      _bn_relu(nn.Conv2d(mid, cout, 3, 1, 1), cout)),
                                    nn.Conv2d(ch, channels, 1), nn.Tanh())
        layers: list[nn.Module] = []
        for a, b in ((self.feat_dim, 1024), (1024, 512), (512, 256)):
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()]
        self.head = nn.Sequential(*layers, nn.Linear(256, 1), nn.ReLU())

    def features(self, x01: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x01 * 2.0 - 1.0).flatten(1))

    @staticmethod
    def target(x01: torch.Tensor) -> torch.Tensor:
        """What the reconstruction is compared with: the image in [-1, 1], as theirs."""
        return x01 * 2.0 - 1.0

    def forward(self, x01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.features(x01)
        return h, self.deconv(self.dec_fc(h).reshape(-1, *self.shape)), self.head(h).reshape(-1)
