"""BigGAN-PyTorch's layers whose state-dict names the authors' released generators carry (their
``layers.py``; written from what it describes): spectral norm with buffers ``u0`` / ``sv0`` beside the
weight, and a BN with ``gain`` / ``bias`` and ``stored_mean`` / ``stored_var``. In eval mode (sampling)
``u0`` stays as loaded."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _SN:
    """Their spectral norm: buffers ``u0`` and ``sv0`` beside the layer's own weight and bias."""

    def _sn_init(self, outputs: int) -> None:
        self.register_buffer("u0", torch.randn(1, outputs))
        self.register_buffer("sv0", torch.ones(1))

    def _normalised(self) -> torch.Tensor:
        w = self.weight.reshape(self.weight.size(0), -1)  # channels_last weights too
        with torch.no_grad():
            v = F.normalize(self.u0 @ w, eps=1e-12)
            u = F.normalize(v @ w.t(), eps=1e-12)
            if self.training:
                self.u0.copy_(u)
        sv = torch.squeeze((v @ w.t()) @ u.t())
        if self.training:
            with torch.no_grad():
                self.sv0.copy_(sv)
        return self.weight / sv


class SNConv2d(nn.Conv2d, _SN):
    def __init__(self, cin: int, cout: int, kernel: int = 3, padding: int = 1, bias: bool = True) -> None:
        super().__init__(cin, cout, kernel, padding=padding, bias=bias)
        self._sn_init(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self._normalised(), self.bias, self.stride, self.padding)


class SNLinear(nn.Linear, _SN):
    def __init__(self, fin: int, fout: int, bias: bool = True) -> None:
        super().__init__(fin, fout, bias=bias)
        self._sn_init(fout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self._normalised(), self.bias)


class SNEmbedding(nn.Embedding, _SN):
    def __init__(self, n: int, dim: int) -> None:
        super().__init__(n, dim)
        self._sn_init(n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.embedding(x, self._normalised())


class BN(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gain, self.bias = nn.Parameter(torch.ones(channels)), nn.Parameter(torch.zeros(channels))
        self.register_buffer("stored_mean", torch.zeros(channels))
        self.register_buffer("stored_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.stored_mean, self.stored_var, self.gain, self.bias, self.training, 0.1, 1e-5)


class CondBN(nn.Module):
    """BN without affine, then ``(1 + gain(y)) * x + bias(y)``: ``gain`` / ``bias`` class embeddings
    (BigGAN, G_shared off) or bias-free SN linears of a shared embedding and z (BigGAN-deep)."""

    def __init__(self, channels: int, gain: nn.Module, bias: nn.Module) -> None:
        super().__init__()
        self.gain, self.bias = gain, bias
        self.register_buffer("stored_mean", torch.zeros(channels))
        self.register_buffer("stored_var", torch.ones(channels))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = F.batch_norm(x, self.stored_mean, self.stored_var, None, None, self.training, 0.1, 1e-5)
        return out * (1 + self.gain(y))[:, :, None, None] + self.bias(y)[:, :, None, None]

