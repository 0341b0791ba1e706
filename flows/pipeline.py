"""Prefect flow over the pipeline stages. Tasks call the same stage functions as the CLI and
dvc.yaml, and pass only paths, overrides and run ids - never tensors.

- Cached on their inputs: a stage task's cache key is the stage's input key (its params, the md5 of
  the data and code it reads: what DVC records in dvc.lock, cgankd/pipeline/stage_key.py). A second
  run with nothing changed runs no stage (each task shows as Cached); a stage whose outputs are gone
  from out_dir runs again.
- Retried on infrastructure failures (anything but a bad input, which fails in one line): a retried
  GAN resumes from its checkpoint.
- Published: the report as a markdown artifact, the headline as a table artifact, and the MLflow
  parent run as a link artifact (an http(s) tracking server) or in the report's description.
- Pushed (``push=True``, the nightly deployment): run in a DVC checkout on its own params.yaml, the
  flow records its outputs in dvc.lock (``dvc commit``) and pushes them to the DVC remote, where a
  teammate's ``dvc pull`` gets them.

    python flows/pipeline.py                      # runs locally, no server needed
    python flows/pipeline.py -S filter.rho=0.7    # any params.yaml override
    python flows/pipeline.py -S task=regression -S out_dir=artifacts/regression   # rc + CcGAN
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from cgankd.base.errors import CgankdError
from cgankd.base.io import read_json
from cgankd.config import Config, load_config
from cgankd.config.layout import Layout
from cgankd.ops.dvc_remote import commit_and_push
from cgankd.ops.mlflow_ui import run_url
from cgankd.ops.tracking import pipeline_run, tracking_uri
from cgankd.pipeline.dvc_yaml import ARTIFACTS, stale_graph
from cgankd.pipeline.runner import run_stage
from cgankd.pipeline.spec import stage_calls
from cgankd.pipeline.stage_key import input_key, outputs_present

RETRIES = 2


def infrastructure(task: Any, task_run: Any, state: Any) -> bool:
    """Retry what the machine did (an OSError, a lost device, a killed worker), not a bad input."""
    try:
        exc = state.result(raise_on_failure=False)
    except Exception as e:  # noqa: BLE001  (the result itself could not be read: still the machine's)
        exc = e
    return not isinstance(exc, CgankdError)


@task(cache_key_fn=lambda context, parameters: parameters["key"], persist_result=True, retries=RETRIES,
      retry_condition_fn=infrastructure)
def stage_task(params: str, overrides: list[str], name: str, kwargs: dict[str, Any], key: str) -> dict[str, Any]:
    cfg = load_config(params, overrides)
    return run_stage(cfg, name, **kwargs)


def publish(cfg: Config, run_id: str | None) -> None:
    """The report, the headline and the MLflow run, readable in Prefect's UI and API."""
    lay = Layout(cfg)
    url = run_url(tracking_uri(), run_id) if run_id else None
    where = f"MLflow parent run {run_id}" + (f": {url}" if url else "")
    if lay.path("report").is_file():
        create_markdown_artifact(lay.path("report").read_text(), key="cgankd-report", description=where)
    if lay.path("headline").is_file():
        rows = [{"metric": f"{group}.{name}", "value": value}
                for group, values in read_json(lay.path("headline")).items()
                for name, value in (values.items() if isinstance(values, dict) else [("", values)])]
        create_table_artifact(rows, key="cgankd-headline", description=where)
    if url:
        create_link_artifact(url, link_text=f"MLflow run {run_id}", key="cgankd-mlflow-run")


def pushable(cfg: Config, params: str, overrides: list[str]) -> None:
    """dvc.lock can only describe a run of the checkout's own params.yaml into its artifacts/."""
    here = Path.cwd()
    why = ("it has -S overrides (put them in params.yaml)" if overrides else
           f"{params} is not this checkout's params.yaml" if Path(params).resolve() != here / "params.yaml" else
           "there is no dvc.yaml here (run it in the DVC checkout)" if not (here / "dvc.yaml").is_file() else
           f"out_dir is {cfg.out_dir}, not {ARTIFACTS}" if Path(cfg.out_dir) != Path(ARTIFACTS) else
           f"dvc.yaml is not for these params ({stale})" if (stale := stale_graph(cfg, here / "dvc.yaml")) else None)
    if why:
        raise CgankdError("push", f"this run cannot be pushed as the checkout's dvc.lock: {why}")


@flow(name="cgankd-pipeline", log_prints=True)
def pipeline(params: str = "params.yaml", overrides: list[str] | None = None,
             retry_delay_s: float = 30.0, push: bool = False) -> str | None:
    """Every stage in order under one MLflow parent run; returns its run id. ``push``: then record
    the outputs in dvc.lock and push them to the DVC remote."""
    overrides = list(overrides or [])
    cfg = load_config(params, overrides)
    if push:
        pushable(cfg, params, overrides)  # before hours of training, not after
    with pipeline_run(cfg, "prefect-pipeline") as run_id:
        for name, kwargs in stage_calls(cfg):
            method = kwargs.get("method")
            result = stage_task.with_options(
                name=name, retry_delay_seconds=retry_delay_s,
                refresh_cache=not outputs_present(cfg, name, method),
            )(params, overrides, name, kwargs, input_key(cfg, name, method))
            get_run_logger().info("%s done: %s", name, {k: v for k, v in result.items()
                                                        if isinstance(v, (int, float, str))})
    publish(cfg, run_id)
    if push:
        commit_and_push(Path.cwd())
        get_run_logger().info("outputs recorded in dvc.lock and pushed to the DVC remote")
    return run_id


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-p", "--params", default="params.yaml")
    ap.add_argument("-S", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a param (repeatable), as with cgankd -S")
    ap.add_argument("--push", action="store_true", help="then dvc commit and dvc push (in the DVC checkout)")
    a = ap.parse_args()  # --help and bad arguments exit here, before any run starts
    print("mlflow parent run:", pipeline(a.params, a.overrides, push=a.push))
