"""The only module that talks to MLflow: stage runs nested under a pipeline run, and the registry.

Stages receive a ``Tracker``; without MLflow installed (a bare GPU box) or with
``CGANKD_TRACKING=off`` they get a ``NullTracker`` and run the same.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cgankd.config import Config
from cgankd.errors import CgankdError

PARENT_ENV = "CGANKD_PARENT_RUN_ID"
TELEMETRY_OFF = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "ORT_DISABLE_TELEMETRY": "1",
}


def quiet_telemetry() -> None:
    for k, v in TELEMETRY_OFF.items():
        os.environ.setdefault(k, v)


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class NullTracker:
    run_id: str | None = None

    def log_params(self, params: dict[str, Any]) -> None: ...
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None: ...
    def log_artifact(self, path: str | Path, folder: str | None = None) -> None: ...
    def set_tags(self, tags: dict[str, str]) -> None: ...


class MlflowTracker(NullTracker):
    def __init__(self, mlflow: Any, run_id: str) -> None:
        self.mlflow = mlflow
        self.run_id = run_id

    def log_params(self, params: dict[str, Any]) -> None:
        clean = {k: ("null" if v is None else str(v))[:500] for k, v in params.items()}
        self.mlflow.log_params(clean)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        vals = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and k != "step"}
        self.mlflow.log_metrics(vals, step=step)

    def log_artifact(self, path: str | Path, folder: str | None = None) -> None:
        if Path(path).exists():
            self.mlflow.log_artifact(str(path), artifact_path=folder)

    def set_tags(self, tags: dict[str, str]) -> None:
        self.mlflow.set_tags(tags)


def _mlflow():
    if os.environ.get("CGANKD_TRACKING", "on").lower() in ("off", "0", "false"):
        return None
    try:
        import mlflow
    except ImportError:
        return None
    quiet_telemetry()
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    mlflow.set_tracking_uri(tracking_uri())
    return mlflow


@contextlib.contextmanager
def pipeline_run(cfg: Config, name: str = "pipeline") -> Iterator[str | None]:
    """A parent run; stage runs started inside (or in child processes, via the environment)
    nest under it. Yields the run id."""
    mlflow = _mlflow()
    if mlflow is None:
        yield None
        return
    mlflow.set_experiment(cfg.tracking.experiment)
    with mlflow.start_run(run_name=name, tags={"mlflow.source.git.commit": git_commit(),
                                               "cgankd.kind": "pipeline"}) as run:
        mlflow.log_params({k: ("null" if v is None else str(v))[:500] for k, v in cfg.flat().items()})
        old = os.environ.get(PARENT_ENV)
        os.environ[PARENT_ENV] = run.info.run_id
        try:
            yield run.info.run_id
        finally:
            if old is None:
                os.environ.pop(PARENT_ENV, None)
            else:
                os.environ[PARENT_ENV] = old


@contextlib.contextmanager
def stage_run(cfg: Config, stage: str) -> Iterator[NullTracker]:
    """A run for one stage, a child of the pipeline run when there is one."""
    mlflow = _mlflow()
    if mlflow is None:
        yield NullTracker()
        return
    mlflow.set_experiment(cfg.tracking.experiment)
    parent = os.environ.get(PARENT_ENV)
    active = mlflow.active_run()
    if active is not None and active.info.run_id == parent:
        ctx = mlflow.start_run(run_name=stage, nested=True)
    else:
        ctx = mlflow.start_run(run_name=stage, parent_run_id=parent) if parent else mlflow.start_run(
            run_name=stage)
    with ctx as run:
        tracker = MlflowTracker(mlflow, run.info.run_id)
        tracker.set_tags({"cgankd.stage": stage, "mlflow.source.git.commit": git_commit()})
        tracker.log_params(cfg.flat())
        yield tracker


def register_student(cfg: Config, onnx_path: Path, torch_model: Any, sample: Any, metric: float,
                     info: dict[str, Any], tracker: NullTracker) -> dict[str, Any]:
    """Log the student as ONNX and PyTorch models, register both, and move the aliases.

    ``champion`` moves to the new version only when it beats the current champion's test metric
    (accuracy up, MAE down); otherwise the new version becomes ``challenger`` with the reason.
    """
    mlflow = _mlflow()
    if mlflow is None or tracker.run_id is None:
        return {"registered": False, "reason": "tracking is off"}
    import mlflow.onnx
    import mlflow.pytorch
    import onnx
    from mlflow.exceptions import MlflowException
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient

    name = cfg.model_name
    client = MlflowClient()
    with contextlib.suppress(MlflowException):  # a champion scored differently: refuse to mix them
        champ = client.get_model_version_by_alias(name, "champion")
        if champ.tags.get("metric_name") != info["metric_name"]:
            raise CgankdError(f"registered model {name}", f"its champion v{champ.version} is scored by "
                              f"{champ.tags.get('metric_name')}, this student by {info['metric_name']}; "
                              "set tracking.model_name to keep them apart")
    out = torch_model(sample).detach().numpy()
    signature = infer_signature(sample.numpy(), out)
    tags = {"test_metric": f"{metric:.6g}", "metric_name": info["metric_name"], "task": cfg.task,
            "method": info["method"], "git_commit": git_commit()}
    onnx_info = mlflow.onnx.log_model(onnx.load(str(onnx_path)), name="student_onnx",
                                      signature=signature, registered_model_name=name,
                                      input_example=sample.numpy()[:1])
    mlflow.pytorch.log_model(torch_model, name="student_pytorch", signature=signature,
                             registered_model_name=f"{name}-pytorch", input_example=sample)
    version = onnx_info.registered_model_version
    for k, v in tags.items():
        client.set_model_version_tag(name, str(version), k, v)
    higher = cfg.task == "classification"
    try:
        champ = client.get_model_version_by_alias(name, "champion")
        champ_metric = float(champ.tags.get("test_metric", "nan"))
    except MlflowException:  # no champion yet
        champ, champ_metric = None, None
    if champ is None or (metric > champ_metric if higher else metric < champ_metric):
        client.set_registered_model_alias(name, "champion", str(version))
        alias = "champion"
        reason = "first version" if champ is None else (
            f"{info['metric_name']} {metric:.4g} beats champion v{champ.version} ({champ_metric:.4g})")
    else:
        client.set_registered_model_alias(name, "challenger", str(version))
        alias = "challenger"
        reason = (f"{info['metric_name']} {metric:.4g} does not beat champion v{champ.version} "
                  f"({champ_metric:.4g})")
    client.set_model_version_tag(name, str(version), "promotion", reason)
    return {"registered": True, "model_name": name, "version": int(version), "alias": alias,
            "reason": reason, "uri": f"models:/{name}/{version}"}
