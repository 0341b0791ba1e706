"""BLKD (Hinton et al., 2015): soft targets from the teacher.

Classification: ``(1 - alpha) * CE(s, y) + alpha * T^2 * KL(softmax(t/T) || softmax(s/T))``
(the T^2 keeps the soft term's gradients on the scale of the hard one).
Regression analogue: the teacher's prediction is a second target,
``(1 - alpha) * MSE(s, y) + alpha * MSE(s, t)`` (T does not apply to a scalar).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cgankd.base.checks import Fraction, Rate
from cgankd.kd.base import DISTILLERS, Distiller, KDContext, hard_loss
from cgankd.task import task_of


@dataclass
class Settings:  # params.yaml kd.blkd
    temperature: Rate = 4.0  # T: softmax(logits / T); the soft term is scaled by T^2
    alpha: Fraction = 0.9  # the soft term's share


def kd_kl(student_logits: torch.Tensor, target_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(softmax(target/T) || softmax(student/T))``, averaged over the batch."""
    t = temperature
    log_p_s = F.log_softmax(student_logits / t, dim=1)
    log_p_t = F.log_softmax(target_logits / t, dim=1)
    return F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * t * t


@DISTILLERS.register("blkd")
class BLKD(Distiller):
    label = "BLKD"
    needs_teacher = True
    Settings = Settings

    def __init__(self, student: torch.nn.Module, ctx: KDContext, settings: Settings | None = None) -> None:
        super().__init__(student, ctx, settings)
        self.temperature, self.alpha = self.settings.temperature, self.settings.alpha

    def forward_train(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = self.student(x)
        with torch.no_grad():
            t = self.teacher(x)
        a = self.alpha
        if task_of(self.task).categorical:
            return out, {"loss_ce": (1 - a) * hard_loss(out, y, self.task),
                         "loss_kd": a * kd_kl(out, t, self.temperature)}
        return out, {"loss_mse": (1 - a) * hard_loss(out, y, self.task),
                     "loss_kd": a * F.mse_loss(out, t)}
