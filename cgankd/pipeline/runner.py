"""Running stages: one stage under the out_dir lock and its MLflow child run (``run_stage``), the
whole pipeline under one parent run (``cgankd run``), and the one "reuse or run" of compare, ablate
and the bench scripts (``reuse_or_run``)."""

from __future__ import annotations

from typing import Any

from cgankd.base import faults
from cgankd.base.errors import CgankdError
from cgankd.base.io import read_json
from cgankd.base.lock import out_dir_lock
from cgankd.base.tracker import NullTracker
from cgankd.compute import distributed
from cgankd.config import Config
from cgankd.config.layout import Layout
from cgankd.ops.tracking import pipeline_run, stage_run
from cgankd.pipeline.spec import DDP_STAGES, stage, stage_calls, stage_label

DATA_KEYS = {"prepared", "fakes", "fakes_dir"}  # the data sets a run names with mlflow's log_input


def run_stage(cfg: Config, name: str, **kwargs: Any) -> dict[str, Any]:
    """One stage, the only writer of ``out_dir`` while it runs (cgankd/base/lock.py). Under torchrun the
    training stages run on every rank; rank 0 alone holds the lock, logs and writes."""
    s = stage(name)
    if distributed.active():
        if not s.ddp:
            raise CgankdError("torchrun", f"{name} does not train a network in parallel; run it without torchrun "
                              f"(torchrun runs {', '.join(DDP_STAGES)})")
        if not distributed.is_main():
            return s.run(cfg, NullTracker(), **kwargs)
    params = list(s.params) if s.when(cfg) else None  # the child run logs what its stage reads
    with out_dir_lock(cfg.out_dir), stage_run(cfg, stage_label(name, kwargs), params, s.ddp) as tracker, \
            faults.stage(name):
        faults.point("start")
        lay, method = Layout(cfg), kwargs.get("method")
        for key in sorted(DATA_KEYS.intersection(s.deps_for(cfg, method))):  # the versions it reads
            tracker.log_input(key, lay.path(key, method), "training")
        result = call_stage(cfg, name, tracker, **kwargs)
        for key in sorted(DATA_KEYS.intersection(s.outs)):  # the version it made (make-fakes' fake set)
            tracker.log_input(key.removesuffix("_dir"), lay.path(key, method), "generated")
        return result


def call_stage(cfg: Config, name: str, tracker: NullTracker, **kwargs: Any) -> dict[str, Any]:
    """The stage's function, then the files the table says its MLflow run shows (its plots under
    plots/, its other artifacts: pictures under plots/, the rest at the run's root): no stage lists
    them again. A file a run did not write (no fake kept: no grid) is left out."""
    s, lay = stage(name), Layout(cfg)
    result = s.run(cfg, tracker, **kwargs)
    for key in (*s.plots, *s.artifacts):
        path = lay.path(key, kwargs.get("method"))
        if path.is_file():
            tracker.log_artifact(path, "plots" if key in s.plots or path.suffix == ".png" else None)
    return result


def run_pipeline(cfg: Config) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with out_dir_lock(cfg.out_dir), pipeline_run(cfg) as run_id:
        for name, kwargs in stage_calls(cfg):
            results[stage_label(name, kwargs)] = run_stage(cfg, name, **kwargs)
    results["parent_run_id"] = run_id
    return results


def recorded(cfg: Config, name: str, method: str | None = None) -> dict[str, Any] | None:
    """A stage's recorded result in ``cfg.out_dir``: its metrics file (a ``done`` file under
    ``metrics/``), or ``{"reused": True}`` for a stage whose mark is another file (prepared data, the
    generator); None when it has not run there."""
    key = stage(name).done
    if key is None:
        return None
    path = Layout(cfg).path(key, method)
    if not path.is_file():
        return None
    return read_json(path) if path.parent.name == "metrics" else {"reused": True}


def reuse_or_run(cfg: Config, name: str, reuse: bool, **kwargs: Any) -> dict[str, Any]:
    """The stage's recorded result when ``reuse`` and it has run in ``cfg.out_dir``, else a run of it."""
    done = recorded(cfg, name, kwargs.get("method")) if reuse else None
    return done or run_stage(cfg, name, **kwargs)
