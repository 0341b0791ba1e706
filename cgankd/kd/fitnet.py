"""FitNet hints (Romero et al., 2015), trained in one stage as RepDistiller does:
``hard loss + hint_kd * T^2 * KL(teacher || student) + beta * MSE(regressor(student hint), teacher hint)``.
The cGAN-KD authors run it with ``-a 1 -b 100`` (``kd.fitnet.hint_kd: 1``, ``kd.fitnet.beta: 100``); ``hint_kd: 0``
leaves the soft term out (regression: ``hint_kd * MSE(student, teacher)``, as BLKD's analogue).

The hint is the middle stage's feature map of each network (``kd.fitnet.hint_layer`` picks another
stage index of the student; the teacher's is its middle one). The regressor is a 1x1 conv + BN
from the student's channels to the teacher's; when the spatial sizes differ both maps are
average-pooled to the smaller one. Works for classification and regression alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn

from cgankd.base.checks import Range, Rate, Weight
from cgankd.kd.base import DISTILLERS, Distiller, KDContext, hard_loss
from cgankd.kd.blkd import kd_kl
from cgankd.task import task_of


@dataclass
class Settings:  # params.yaml kd.fitnet
    beta: Weight = 100.0  # the hint term's weight
    hint_layer: Annotated[int | None, Range(ge=0, note="the middle one")] = None  # the student's hint stage
    hint_kd: Weight = 0.0  # + hint_kd * T^2 * KL(teacher || student), RepDistiller's -a
    temperature: Rate = 4.0  # T of that soft term


def hint_loss(student_map: torch.Tensor, teacher_map: torch.Tensor) -> torch.Tensor:
    """Mean squared error after pooling both maps to the smaller spatial size."""
    size = min(student_map.shape[-1], teacher_map.shape[-1])
    if student_map.shape[-1] != size:
        student_map = F.adaptive_avg_pool2d(student_map, size)
    if teacher_map.shape[-1] != size:
        teacher_map = F.adaptive_avg_pool2d(teacher_map, size)
    return F.mse_loss(student_map, teacher_map)


def middle(maps: list[torch.Tensor], index: int | None = None) -> torch.Tensor:
    return maps[len(maps) // 2 if index is None else index]


@DISTILLERS.register("fitnet")
class FitNet(Distiller):
    label = "FitNet"
    needs_teacher = True
    Settings = Settings

    def __init__(self, student: nn.Module, ctx: KDContext, settings: Settings | None = None) -> None:
        super().__init__(student, ctx, settings)
        s = self.settings
        self.beta, self.hint_layer, self.hint_kd, self.temperature = s.beta, s.hint_layer, s.hint_kd, s.temperature
        dev = next(student.parameters()).device  # the probe and the regressor live with the student
        probe = torch.zeros(2, *ctx.input_shape, device=dev)
        was_training = student.training
        with torch.no_grad():
            s_maps, _ = student.eval()(probe, is_feat=True)
            t_maps, _ = self.teacher(probe, is_feat=True)
        student.train(was_training)
        cs, ct = middle(s_maps, self.hint_layer).shape[1], middle(t_maps).shape[1]
        self.regressor = nn.Sequential(nn.Conv2d(cs, ct, 1, bias=False), nn.BatchNorm2d(ct)).to(dev)

    def forward_train(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        s_maps, out = self.student(x, is_feat=True)
        with torch.no_grad():
            t_maps, t_out = self.teacher(x, is_feat=True)
        hint = hint_loss(self.regressor(middle(s_maps, self.hint_layer)), middle(t_maps))
        terms = {task_of(self.task).hard_loss: hard_loss(out, y, self.task)}
        if self.hint_kd > 0:
            soft = kd_kl(out, t_out, self.temperature) if task_of(self.task).categorical else F.mse_loss(out, t_out)
            terms["loss_kd"] = self.hint_kd * soft
        terms["loss_hint"] = self.beta * hint
        return out, terms
