"""Spectral normalisation (Miyato et al. 2018) of the GAN's layers, built to run inside one
compiled graph.

The same computation as ``torch.nn.utils.spectral_norm`` (one power-iteration step per training
forward, sigma = u . W v, weight / sigma; the same buffers ``<name>_orig`` / ``_u`` / ``_v``, so
checkpoints load both ways, and the same random start, so an fp32 CPU run is bit-identical), with
two differences that let ``torch.compile`` take the whole step:

- the power iteration is functional: new ``u`` / ``v`` are computed without grad and copied into
  the buffers, never updated with ``out=`` (which a compiled graph cannot save for backward);
  inside a compiled graph the copy becomes a buffer mutation of the graph;
- it always runs in fp32 (autocast off): bf16's 8-bit mantissa would make ``u`` / ``v`` drift.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-12


class SpectralNorm:
    """The forward pre-hook: sets ``module.<name>`` to the normalised weight before each call."""

    def __init__(self, name: str = "weight", eps: float = EPS) -> None:
        self.name, self.eps = name, eps

    def weight(self, module: nn.Module, iterate: bool) -> torch.Tensor:
        w = getattr(module, self.name + "_orig")
        u, v = getattr(module, self.name + "_u"), getattr(module, self.name + "_v")
        mat = w.reshape(w.size(0), -1)
        if iterate:
            with torch.no_grad():
                v_new = F.normalize(torch.mv(mat.t(), u), dim=0, eps=self.eps)
                u_new = F.normalize(torch.mv(mat, v_new), dim=0, eps=self.eps)
                u.copy_(u_new)
                v.copy_(v_new)
            u, v = u_new, v_new
        return w / torch.dot(u, torch.mv(mat, v))

    def __call__(self, module: nn.Module, inputs: object) -> None:
        dev = getattr(module, self.name + "_orig").device.type
        if not torch.amp.is_autocast_available(dev):  # e.g. the meta device (tests/test_devices.py)
            setattr(module, self.name, self.weight(module, module.training))
            return
        with torch.autocast(dev, enabled=False):
            setattr(module, self.name, self.weight(module, module.training))


def spectral_norm(module: nn.Module, name: str = "weight", eps: float = EPS) -> nn.Module:
    """Normalise ``module.<name>`` by its largest singular value (estimated); returns ``module``."""
    weight = module._parameters[name]
    with torch.no_grad():  # the start torch.nn.utils.spectral_norm draws, in the same order
        mat = weight.reshape(weight.size(0), -1)
        u = F.normalize(weight.new_empty(mat.size(0)).normal_(0, 1), dim=0, eps=eps)
        v = F.normalize(weight.new_empty(mat.size(1)).normal_(0, 1), dim=0, eps=eps)
    del module._parameters[name]
    module.register_parameter(name + "_orig", weight)
    setattr(module, name, weight.data)
    module.register_buffer(name + "_u", u)
    module.register_buffer(name + "_v", v)
    module.register_forward_pre_hook(SpectralNorm(name, eps))
    return module
