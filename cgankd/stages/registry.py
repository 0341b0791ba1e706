"""Stage name -> function; the order ``cgankd run`` and the Prefect flow follow."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cgankd.config import Config
from cgankd.registry import Registry

Stage = Callable[..., dict[str, Any]]
STAGES: Registry[Stage] = Registry("stage")

STAGE_ORDER = ("prepare", "train-teacher", "train-extractor", "train-gan", "make-fakes", "train-student",
               "export", "evaluate", "register")


def stage_label(name: str, kwargs: dict[str, Any]) -> str:
    """The run name of a stage call: ``train-student[cgankd]`` for a per-method stage."""
    return name + (f"[{kwargs['method']}]" if "method" in kwargs else "")


def stage_calls(cfg: Config) -> list[tuple[str, dict[str, Any]]]:
    """(stage, kwargs) in pipeline order; train-student runs once per method."""
    calls: list[tuple[str, dict[str, Any]]] = []
    for name in STAGE_ORDER:
        if name == "train-student":
            calls += [(name, {"method": m}) for m in cfg.student.methods]
        elif name in ("train-extractor", "train-gan", "make-fakes") and "cgankd" not in cfg.student.methods:
            continue
        else:
            calls.append((name, {}))
    return calls


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
    )


_load()
