"""NOKD: the hard loss alone (cross-entropy, or MSE for regression)."""

from __future__ import annotations

import torch

from cgankd.kd.base import DISTILLERS, Distiller, hard_loss


@DISTILLERS.register("nokd")
class NoKD(Distiller):
    def forward_train(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = self.student(x)
        return out, {"loss_ce" if self.task == "classification" else "loss_mse": hard_loss(out, y, self.task)}
