"""One GAN iteration's two losses, each a function of device tensors only, so that
``torch.compile`` takes each one whole: G's forward, DiffAugment (random draws included), D's
forward, spectral norm's power iteration (cgankd/gan/spectral.py) and the hinge loss.

- The D loss calls D once, on ``cat([real, fake])`` (D has no batch norm, so each image's output
  is what two calls would give): one forward, one backward and one power iteration per D step.
- The G loss runs D with its parameters frozen (and outside DistributedDataParallel under
  torchrun): D's gradients are not computed, nor synchronised, in a step that does not update D.

Against two D calls per D step, one call moves two things: DiffAugment draws its random numbers
for the real and fake halves in one call, and D's ``u`` / ``v`` take one power-iteration step per D
step instead of two. Both keep the method (the same augmentations and
the same sigma estimate, converged a little slower), and the fp32 CPU path stays bit-reproducible.
"""

from __future__ import annotations

import torch
from torch import nn

from cgankd.compute.device import Runtime
from cgankd.gan.diffaug import Aug, diff_augment
from cgankd.gan.losses import d_hinge, g_hinge


class Losses:
    def __init__(self, g: nn.Module, d: nn.Module, d_raw: nn.Module, augs: list[Aug], runtime: Runtime) -> None:
        """``g`` / ``d`` as trained (in DDP under torchrun), ``d_raw`` D itself."""
        self.g, self.d, self.d_raw, self.augs, self.runtime = g, d, d_raw, augs, runtime
        self._d_loss = runtime.compiled(self._d)
        self._g_loss = runtime.compiled(self._g)

    def d_loss(self, z: torch.Tensor, fake_labels: torch.Tensor, x_real: torch.Tensor, target: torch.Tensor,
               real_w: torch.Tensor | None, fake_w: torch.Tensor | None) -> torch.Tensor:
        return self._d_loss(z, fake_labels, x_real, target, real_w, fake_w)

    def g_loss(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.d_raw.requires_grad_(False)  # the graph is recorded without D's gradients ...
        try:
            return self._g_loss(z, y)
        finally:
            self.d_raw.requires_grad_(True)  # ... and the D step finds them on again

    def _d(self, z: torch.Tensor, fake_labels: torch.Tensor, x_real: torch.Tensor, target: torch.Tensor,
           real_w: torch.Tensor | None, fake_w: torch.Tensor | None) -> torch.Tensor:
        n = x_real.size(0)
        with self.runtime.autocast():
            with torch.no_grad():
                x_fake = self.g(z, fake_labels).float()
            x = diff_augment(torch.cat([x_real, x_fake]), self.augs)
            out = self.d(x, torch.cat([target, target])).float()
        return d_hinge(out[:n], out[n:], real_w, fake_w)

    def _g(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with self.runtime.autocast():
            out = self.d_raw(diff_augment(self.g(z, y).float(), self.augs), y).float()
        return g_hinge(out)
