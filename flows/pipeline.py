"""Prefect flow over the pipeline stages. Tasks call the same stage functions as the CLI and
dvc.yaml, and pass only paths, overrides and run ids - never tensors.

    python flows/pipeline.py                      # runs locally, no server needed
    python flows/pipeline.py -S filter.rho=0.7    # any params.yaml override
    python flows/pipeline.py -S task=regression -S out_dir=artifacts/regression   # rc + CcGAN
"""

from __future__ import annotations

import argparse
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from cgankd.config import load_config
from cgankd.ops.tracking import pipeline_run
from cgankd.pipeline.runner import run_stage
from cgankd.pipeline.spec import stage_calls


@task(cache_policy=NO_CACHE, retries=0)  # training is not retried: a failure needs a look
def stage_task(params: str, overrides: list[str], name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    cfg = load_config(params, overrides)
    return run_stage(cfg, name, **kwargs)


@flow(name="cgankd-pipeline", log_prints=True)
def pipeline(params: str = "params.yaml", overrides: list[str] | None = None) -> str | None:
    """Every stage in order under one MLflow parent run; returns its run id."""
    overrides = list(overrides or [])
    cfg = load_config(params, overrides)
    with pipeline_run(cfg, "prefect-pipeline") as run_id:
        for name, kwargs in stage_calls(cfg):
            result = stage_task.with_options(name=name)(params, overrides, name, kwargs)
            get_run_logger().info("%s done: %s", name, {k: v for k, v in result.items()
                                                        if isinstance(v, (int, float, str))})
    return run_id


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-p", "--params", default="params.yaml")
    ap.add_argument("-S", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a param (repeatable), as with cgankd -S")
    a = ap.parse_args()  # --help and bad arguments exit here, before any run starts
    print("mlflow parent run:", pipeline(a.params, a.overrides))
