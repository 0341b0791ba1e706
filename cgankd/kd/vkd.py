"""VKD student loss (docs/method.md section 2): the generator V replaces the teacher's soft targets,
``CE(s(x), y) + alpha * T^2 * KL(softmax(V(y, z)/T) || softmax(s(x)/T))`` with fresh z per batch.
Classification only: V generates a distribution over classes (for a scalar label there is no
softened distribution to imitate).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cgankd.base.checks import Fraction, Rate
from cgankd.kd.base import DISTILLERS, Distiller, KDContext, freeze, hard_loss
from cgankd.kd.blkd import kd_kl
from cgankd.task import task_of


@dataclass
class Settings:  # params.yaml kd.vkd
    temperature: Rate = 4.0  # T of V's soft targets (train-vkd trains V at it too)
    alpha: Fraction = 0.9  # the soft term's weight


@DISTILLERS.register("vkd")
class VKD(Distiller):
    label = "VKD"
    needs_generator = True
    Settings = Settings

    def __init__(self, student: nn.Module, ctx: KDContext, settings: Settings | None = None) -> None:
        super().__init__(student, ctx, settings)
        if not task_of(ctx.task).categorical:
            raise ValueError("vkd applies to classification only")
        if ctx.generator is None:
            raise ValueError("VKD needs a trained generator (run `cgankd train-vkd`)")
        self.generator = freeze(ctx.generator)
        self.temperature, self.alpha = self.settings.temperature, self.settings.alpha

    def forward_train(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = self.student(x)
        with torch.no_grad():
            virtual = self.generator(y)
        return out, {"loss_ce": hard_loss(out, y, self.task),
                     "loss_vkd": self.alpha * kd_kl(out, virtual, self.temperature)}
