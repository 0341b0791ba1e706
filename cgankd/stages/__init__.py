"""Pipeline stages: each a plain ``run(cfg, tracker) -> dict`` on paths under ``cfg.out_dir``.

The CLI, dvc.yaml (through the CLI) and the Prefect flow all call these functions.
"""

from cgankd.stages.registry import STAGE_ORDER, STAGES

__all__ = ["STAGES", "STAGE_ORDER"]
