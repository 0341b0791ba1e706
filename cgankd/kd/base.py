"""The distiller interface (mdistiller's): it owns the student and what it learns from.

``forward_train(x, y)`` returns the student's outputs and a dict of named loss terms; the
training loop sums them and logs each one. The teacher (when there is one) is frozen and stays in
eval mode whatever ``train()`` is called with.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from cgankd.base.registry import Registry
from cgankd.task import task_of


@dataclass(frozen=True)
class KDContext:
    """What a distiller may need besides the student and its settings: the task, the input shape, the
    teacher, VKD's generator."""

    task: str
    input_shape: tuple[int, int, int]
    teacher: nn.Module | None = None
    generator: nn.Module | None = None


DISTILLERS: Registry[type[Distiller]] = Registry("distiller")


def hard_loss(out: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    """Cross-entropy on class indices, or MSE on labels scaled to [0, 1]."""
    if task_of(task).categorical:
        return F.cross_entropy(out, y)
    return F.mse_loss(out.reshape(-1), y)


def freeze(model: nn.Module) -> nn.Module:
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


class Distiller(nn.Module):
    """A method is one file: a subclass registered in ``DISTILLERS``, with its ``label`` (tables,
    reports), what it needs loaded, and ``Settings``: a dataclass of its own params.yaml section
    ``kd.<name>`` (fields typed and constrained with ``cgankd.base.checks``), or None."""

    label = ""
    needs_teacher = False
    needs_generator = False
    Settings: ClassVar[type | None] = None

    def __init__(self, student: nn.Module, ctx: KDContext, settings: Any = None) -> None:
        super().__init__()
        if self.Settings is not None:
            self.settings = settings if settings is not None else self.Settings()
        self.student = student
        self.task = ctx.task
        self.teacher = freeze(ctx.teacher) if (self.needs_teacher and ctx.teacher is not None) else None
        if self.needs_teacher and self.teacher is None:
            raise ValueError(f"{type(self).__name__} needs a teacher")

    def train(self, mode: bool = True) -> Distiller:
        super().train(mode)
        for frozen in (self.teacher, getattr(self, "generator", None)):
            if frozen is not None:
                frozen.eval()
        return self

    def trainable(self) -> Iterator[nn.Parameter]:
        """What the optimiser updates: every parameter that requires a gradient."""
        return (p for p in self.parameters() if p.requires_grad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.student(x)

    def forward_train(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError
