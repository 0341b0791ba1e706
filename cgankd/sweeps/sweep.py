"""The one skeleton of ``cgankd compare`` and ``cgankd ablate``: a result file in the work folder
(resumed when asked), jobs handed to one runner (in this process, or on Dask: cgankd/sweeps/jobs.py),
each finished job filed into the result and saved at once, under one MLflow parent run whose headline
follows the result. A sweep says only what its jobs are, how a job's result is filed, and how the
result reads as a table."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cgankd.base.io import read_json, write_json, write_text
from cgankd.base.lock import out_dir_lock
from cgankd.config import Config
from cgankd.ops.tracking import pipeline_run
from cgankd.sweeps.jobs import Cluster, Job, driver_env, execute


def mean_std(vals: list[float], digits: int = 2) -> str:
    """``"m ± s"`` over seeds (sample std; 0 for one value)."""
    a = np.array(vals, float)
    s = float(a.std(ddof=1)) if len(a) > 1 else 0.0
    return f"{a.mean():.{digits}f} ± {s:.{digits}f}"


def saver(out: Path, result: dict[str, Any], render: Callable[[dict[str, Any]], str]) -> Callable[[], None]:
    """A function that writes ``result`` (JSON) and ``render(result)`` (markdown beside it), with
    ``minutes`` counting on from what a resumed run had already spent."""
    t0 = time.perf_counter() - 60 * result["minutes"]

    def save() -> None:
        result["minutes"] = round((time.perf_counter() - t0) / 60, 1)
        write_json(out, result)
        write_text(out.with_suffix(".md"), render(result))

    return save


def run_jobs(jobs: list[Job], on_done: Callable[[Job, Any], None], cluster: Cluster = Cluster()) -> None:
    """Runs ``jobs`` (listed with every job after those it waits for) and calls ``on_done(job,
    result)`` in this process as each one finishes. A failed job stops a local sweep at once; on a
    cluster the other jobs go on and the failures are reported together at the end."""
    keys = set()
    for job in jobs:
        missing = [k for k in job.after if k not in keys]
        if missing:
            raise ValueError(f"job {job.key} waits for {missing}, not listed before it")
        keys.add(job.key)
    if cluster.local:
        env = driver_env(secrets=True)  # this process: nothing travels
        for job in jobs:
            on_done(job, execute(job, env))
        return
    from cgankd.sweeps.dask_runner import run_on_dask  # the edge: Prefect and Dask

    run_on_dask(jobs, on_done, cluster, driver_env())


@dataclass(frozen=True)
class Sweep:
    """What one kind of sweep adds to the skeleton."""

    name: str  # "compare", "ablation": the parent run's kind and the result file's prefix
    resume: Callable[[dict[str, Any], dict[str, Any]], None]  # (result, the saved one): carry it on
    jobs: Callable[[dict[str, Any]], list[Job]]  # the jobs still to run, given the (resumed) result
    file: Callable[[dict[str, Any], Job, Any], None]  # files a finished job's result into the result
    table: Callable[[dict[str, Any]], str]  # the result as markdown
    headline: Callable[[dict[str, Any]], dict[str, float]]  # the parent run's metrics


def run_sweep(sweep: Sweep, cfg: Config, work: Path, result: dict[str, Any], resume: bool,
              cluster: Cluster) -> dict[str, Any]:
    """Runs ``sweep`` from ``result`` (its fields; ``seeds`` and ``minutes`` among them) in ``work``,
    writing ``<name>_<source>.json`` and its markdown after every finished job."""
    out = work / f"{sweep.name}_{cfg.source}.json"
    if resume and out.is_file():
        sweep.resume(result, read_json(out))
    save = saver(out, result, sweep.table)

    def done(job: Job, res: Any) -> None:
        sweep.file(result, job, res)
        save()

    with out_dir_lock(work), pipeline_run(cfg, sweep.name, result["seeds"], lambda: sweep.headline(result)) as parent:
        result["parent_run_id"] = parent
        run_jobs(sweep.jobs(result), done, cluster)
        save()
    print(sweep.table(result))
    print(json.dumps({"results": str(out), "markdown": str(out.with_suffix(".md"))}))
    return result
