"""``cgankd run``: every stage in order in this process, one MLflow parent run, a child per stage."""

from __future__ import annotations

from typing import Any

from cgankd.base import faults
from cgankd.base.errors import CgankdError
from cgankd.base.lock import out_dir_lock
from cgankd.compute import distributed
from cgankd.config import Config
from cgankd.ops.tracking import NullTracker, pipeline_run, stage_run
from cgankd.pipeline import dvc_yaml
from cgankd.stages.registry import DDP_STAGES, STAGES, stage_calls, stage_label


def run_stage(cfg: Config, name: str, **kwargs: Any) -> dict[str, Any]:
    """One stage, the only writer of ``out_dir`` while it runs (cgankd/base/lock.py). Under torchrun the
    training stages run on every rank; rank 0 alone holds the lock, logs and writes."""
    if distributed.active():
        if name not in DDP_STAGES:
            raise CgankdError("torchrun", f"{name} does not train a network in parallel; run it without torchrun "
                              f"(torchrun runs {', '.join(DDP_STAGES)})")
        if not distributed.is_main():
            return STAGES.get(name)(cfg, NullTracker(), **kwargs)
    spec = dvc_yaml.stage_specs(cfg).get(dvc_yaml.stage_name(name, kwargs.get("method")))
    params = spec["params"] if spec else None  # the child run logs what its stage reads
    with out_dir_lock(cfg.out_dir), stage_run(cfg, stage_label(name, kwargs), params) as tracker:
        faults.point("start")
        return STAGES.get(name)(cfg, tracker, **kwargs)


def run_pipeline(cfg: Config) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with out_dir_lock(cfg.out_dir), pipeline_run(cfg) as run_id:
        for name, kwargs in stage_calls(cfg):
            results[stage_label(name, kwargs)] = run_stage(cfg, name, **kwargs)
    results["parent_run_id"] = run_id
    return results
