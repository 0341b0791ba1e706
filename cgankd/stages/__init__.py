"""Pipeline stages: each a plain ``run(cfg, tracker) -> dict`` on paths under ``cfg.out_dir``.

The CLI, dvc.yaml (through the CLI) and the Prefect flow all call these functions. ``STAGES`` is
loaded on first use: importing a stage module (or ``cgankd.stages.order``) loads no other stage.
"""

from typing import Any

__all__ = ["STAGES", "STAGE_ORDER"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from cgankd.stages import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'cgankd.stages' has no attribute {name!r}")
