"""NOKD: the hard loss alone (cross-entropy, or MSE for regression)."""

from __future__ import annotations

import torch

from cgankd.kd.base import DISTILLERS, Distiller, hard_loss
from cgankd.task import task_of


@DISTILLERS.register("nokd")
class NoKD(Distiller):
    label = "NOKD"

    def forward_train(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = self.student(x)
        return out, {task_of(self.task).hard_loss: hard_loss(out, y, self.task)}
