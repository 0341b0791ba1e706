"""Stage name -> function; the order ``cgankd run`` and the Prefect flow follow."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cgankd.base.registry import Registry
from cgankd.config import Config
from cgankd.stages.order import DDP_STAGES, FAKE_STAGES, STAGE_ORDER

Stage = Callable[..., dict[str, Any]]
STAGES: Registry[Stage] = Registry("stage")

__all__ = ["DDP_STAGES", "FAKE_STAGES", "STAGES", "STAGE_ORDER", "stage_calls", "stage_label"]


def stage_label(name: str, kwargs: dict[str, Any]) -> str:
    """The run name of a stage call: ``train-student[cgankd]`` for a per-method stage."""
    return name + (f"[{kwargs['method']}]" if "method" in kwargs else "")


def stage_calls(cfg: Config) -> list[tuple[str, dict[str, Any]]]:
    """(stage, kwargs) in pipeline order; train-student runs once per method, methods without fakes
    first (fine-tune mode starts the others from them). The GAN stages run only when a method
    uses this pipeline's fakes, train-vkd only when a method uses VKD."""
    calls: list[tuple[str, dict[str, Any]]] = []
    for name in STAGE_ORDER:
        if name == "train-student":
            calls += [(name, {"method": m}) for m in ordered_methods(cfg.student.methods)]
        elif (name in FAKE_STAGES and not cfg.uses_fakes) or (name == "train-vkd" and not cfg.uses_vkd):
            continue
        else:
            calls.append((name, {}))
    return calls


def ordered_methods(methods: list[str]) -> list[str]:
    from cgankd.kd.methods import method_uses_fakes

    return sorted(methods, key=method_uses_fakes)  # stable: the listed order within each group


def _load() -> None:
    from cgankd.stages import (  # noqa: F401  (register)
        evaluate,
        export,
        make_fakes,
        prepare,
        register,
        train_extractor,
        train_gan,
        train_student,
        train_teacher,
        train_vkd,
    )


_load()
