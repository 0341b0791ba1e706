"""``cgankd run``: every stage in order in this process, one MLflow parent run, a child per stage."""

from __future__ import annotations

from typing import Any

from cgankd import faults
from cgankd.config import Config
from cgankd.lock import out_dir_lock
from cgankd.stages.registry import STAGES, stage_calls, stage_label
from cgankd.tracking import pipeline_run, stage_run


def run_stage(cfg: Config, name: str, **kwargs: Any) -> dict[str, Any]:
    """One stage, the only writer of ``out_dir`` while it runs (cgankd/lock.py)."""
    with out_dir_lock(cfg.out_dir), stage_run(cfg, stage_label(name, kwargs)) as tracker:
        faults.point("start")
        return STAGES.get(name)(cfg, tracker, **kwargs)


def run_pipeline(cfg: Config) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with out_dir_lock(cfg.out_dir), pipeline_run(cfg) as run_id:
        for name, kwargs in stage_calls(cfg):
            results[stage_label(name, kwargs)] = run_stage(cfg, name, **kwargs)
    results["parent_run_id"] = run_id
    return results
