"""MLflow runs: stage runs nested under a pipeline run, the tracking store and its outages (the
registry is ``cgankd.ops.model_registry``).

Stages receive a ``Tracker``; without MLflow installed (a bare GPU box) or with
``CGANKD_TRACKING=off`` they get a ``NullTracker`` and run the same.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cgankd.base.errors import CgankdError
from cgankd.base.install import install_hint
from cgankd.base.io import open_private
from cgankd.base.redact import redact
from cgankd.base.tracker import NullTracker
from cgankd.config import Config
from cgankd.ops.backlog import NAME as BACKLOG
from cgankd.ops.backlog import OWNER_TAG, GuardedTracker, Ref, errors, http_defaults, offline, went_offline
from cgankd.ops.conflicts import experiment, retry_conflict
from cgankd.ops.dvc_exp import exp_parent
from cgankd.ops.reconcile import process_tags, reconcile

PARENT_ENV = "CGANKD_PARENT_RUN_ID"
# MLflow 3's UI opens an experiment on its GenAI overview (traces) unless this tag says otherwise
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
ENTRY_POINTS = ("pipeline", "dvc-repro", "prefect-pipeline")  # parents of one pipeline, named alike
_NOTICE_SHOWN = False
TELEMETRY_OFF = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "DVC_NO_ANALYTICS": "1",
                 "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "ORT_DISABLE_TELEMETRY": "1"}


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


def run_tags(cfg: Config) -> dict[str, str]:
    """What ran, as tags every run carries: profile, data source, task, student methods, commit."""
    return {"cgankd.profile": cfg.profile or "default", "cgankd.source": cfg.source, "cgankd.task": cfg.task,
            "cgankd.methods": ",".join(cfg.student.methods), "mlflow.source.git.commit": git_commit()}


def run_name(cfg: Config, entry: str, seeds: list[int] | None = None) -> str:
    """What a parent run ran, as the runs table shows it: ``objects/classification seed0``,
    ``rc/regression compare seeds 0,1,2``; a profile other than the default is added in brackets."""
    what = "" if entry in ENTRY_POINTS else f" {entry}"
    which = f"seed{cfg.seed}" if seeds is None else "seeds " + ",".join(str(s) for s in seeds)
    profile = f" [{cfg.profile}]" if cfg.profile else ""
    return f"{cfg.source}/{cfg.task}{what} {which}{profile}"


def evaluation_headline(cfg: Config) -> dict[str, Any]:
    """The evaluate stage's metrics (``metrics.json``) for the parent run: every model's
    validation and test metric, the gain over NOKD and the exported method; {} before evaluate."""
    path = cfg.path("metrics.json")
    if not path.is_file():
        return {}
    from cgankd.base.io import read_json

    return {k: v for k, v in read_json(path).items() if not k.endswith("_params") and "_test_last_" not in k}


def mlflow_or_none(notice: bool = True):
    """mlflow, or None when tracking is off or MLflow is not installed (said once, when ``notice``)."""
    if os.environ.get("CGANKD_TRACKING", "on").lower() in ("off", "0", "false"):
        return None
    try:
        import mlflow
    except ImportError:
        global _NOTICE_SHOWN
        if notice and not _NOTICE_SHOWN:  # once per process: a bare GPU box runs the core without tracking
            _NOTICE_SHOWN = True
            print("cgankd: MLflow is not installed: tracking off, outputs are written as usual "
                  f"({install_hint('track')} to track)", file=sys.stderr)
        return None
    quiet_telemetry()
    http_defaults()
    for name, level in (("mlflow", logging.WARNING), ("alembic", logging.WARNING),
                        ("mlflow.system_metrics", logging.ERROR)):  # an outage is said once, by the backlog
        logging.getLogger(name).setLevel(level)
    mlflow.set_tracking_uri(tracking_uri())
    _init_sqlite(tracking_uri())
    return mlflow


_INITIALISED: set[str] = set()


def _init_sqlite(uri: str) -> None:
    """Create (or migrate) a sqlite store's tables under a file lock, once per process: two runs
    started together on a new ``mlflow.db`` otherwise race in MLflow's schema migration (seen:
    one of them fails inside alembic)."""
    if not uri.startswith("sqlite:///") or uri in _INITIALISED:
        return
    import fcntl

    from mlflow.tracking import MlflowClient

    db = Path(uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    with open_private(db.with_name(db.name + ".init-lock"), append=True) as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes
        MlflowClient(uri).search_experiments(max_results=1)
    _INITIALISED.add(uri)


def _experiment(mlflow: Any, cfg: Config) -> str:
    """Make the experiment current, created if missing; returns its id. Two pipelines starting
    together on a new server race to create it and to tag it: the loser uses the one the winner
    created (cgankd/ops/conflicts.py), and the run is started in it by id."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    exp = experiment(client, cfg.tracking.experiment)
    mlflow.set_experiment(experiment_id=exp.experiment_id)
    key, value = EXPERIMENT_KIND
    if exp.tags.get(key) != value:
        retry_conflict(client.set_experiment_tag, exp.experiment_id, key, value)
    return str(exp.experiment_id)


def reconcile_killed(cfg: Config, by: str) -> list[str]:
    """Ends as KILLED the experiment's RUNNING runs whose process on this host is gone; returns
    their ids (none when tracking is off, the experiment is new or the server does not answer)."""
    mlflow = mlflow_or_none()
    if mlflow is None or offline(tracking_uri()):
        return []
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient()
        exp = client.get_experiment_by_name(cfg.tracking.experiment)
        return reconcile(client, exp.experiment_id, by) if exp is not None else []
    except errors() as exc:  # a tracking outage never stops a run
        print(f"cgankd: could not check for killed runs ({type(exc).__name__}); going on", file=sys.stderr)
        return []


def require_mlflow(what: str) -> Any:
    mlflow = mlflow_or_none(notice=False)  # the error says it
    if mlflow is None:
        raise CgankdError(what, f"MLflow is not available (CGANKD_TRACKING=off, or {install_hint('track')})")
    return mlflow


def log_headline(tracker: GuardedTracker, metrics: dict[str, Any]) -> None:
    """Numbers become metrics of the parent run, text (the exported method) a ``cgankd.<key>`` tag;
    the metrics join the experiment's headline view in the UI (mlflow_ui.py)."""
    from mlflow.tracking import MlflowClient

    from cgankd.ops import mlflow_ui

    numbers = {re.sub(r"[^\w\-. /]", "_", k): float(v) for k, v in metrics.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    tracker.log_metrics(numbers)
    tracker.set_tags({f"cgankd.{k}": str(v) for k, v in metrics.items() if isinstance(v, str)})
    if numbers and tracker.run_id is not None and not offline(tracker.uri):
        client = MlflowClient(tracker.uri)
        try:
            mlflow_ui.save_view(client, client.get_run(tracker.run_id).info.experiment_id, list(numbers))
        except errors() as exc:  # the view is a convenience: the next parent run writes it again
            went_offline(tracker.uri, "saving the runs-table view", exc, tracker.backlog)


def _start(mlflow: Any, cfg: Config, name: str, parent: str | None, tags: dict[str, str],
           system: bool = False) -> GuardedTracker:
    """Start a run (nested under the active parent, or a child of ``parent`` by id); when the
    server does not answer, a tracker that logs into the backlog."""
    uri, backlog = tracking_uri(), cfg.path(BACKLOG).resolve()
    # tracking-replay touches only runs that carry their backlog's path; a run whose process is
    # gone is found by its pid and host (cgankd/ops/reconcile.py)
    tags = {**tags, OWNER_TAG: str(backlog), **process_tags()}
    ref = Ref(name, cfg.tracking.experiment, parent)
    if not offline(uri) and not (parent or "").startswith("backlog:"):
        try:
            exp_id = _experiment(mlflow, cfg)
            active = mlflow.active_run()
            if active is not None and active.info.run_id == parent:
                run = mlflow.start_run(experiment_id=exp_id, run_name=name, nested=True, tags=tags,
                                       log_system_metrics=system)
            else:
                run = mlflow.start_run(experiment_id=exp_id, run_name=name, parent_run_id=parent, tags=tags,
                                       log_system_metrics=system)
            ref.run_id = run.info.run_id
            return GuardedTracker(uri, ref, backlog)
        except errors() as exc:
            went_offline(uri, f"{name}: starting its run", exc, backlog)
    tracker = GuardedTracker(uri, ref, backlog)
    tracker.set_tags(tags)  # into the backlog: the run is created when it is replayed
    return tracker


@contextlib.contextmanager
def _run(cfg: Config, name: str, parent: str | None, tags: dict[str, str],
         system: bool = False) -> Iterator[GuardedTracker]:
    mlflow = mlflow_or_none()
    tracker = _start(mlflow, cfg, name, parent, tags, system)
    status = "FAILED"
    try:
        yield tracker
        status = "FINISHED"
    finally:
        tracker.end(mlflow, status)


def reachable(uri: str, timeout: float = 5.0) -> None:
    """Before a parent run starts: an http(s) tracking server that refuses connections is a wrong
    setting, one line and exit 2. (A server lost later in the run is an outage: the run goes on
    and keeps a backlog, cgankd/ops/backlog.py.)"""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "localhost", port), timeout=timeout).close()
    except OSError as exc:
        why = "refuses connections" if isinstance(exc, ConnectionRefusedError) else f"cannot be reached ({exc})"
        raise CgankdError("MLFLOW_TRACKING_URI", f"{redact(uri)} {why}: start the tracking server (`make team-stack` "
                          "starts one to try), point MLFLOW_TRACKING_URI at a running one, or set "
                          "CGANKD_TRACKING=off") from None


@contextlib.contextmanager
def pipeline_run(cfg: Config, entry: str = "pipeline", seeds: list[int] | None = None,
                 headline: Callable[[], dict[str, Any]] | None = None) -> Iterator[str | None]:
    """A parent run; stage runs started inside (or in child processes, via the environment)
    nest under it. Yields the run id. ``entry``: what started it (tag ``cgankd.entry``). The
    parent gets the headline metrics (default: the evaluate stage's ``metrics.json``; after a
    failure only if this run wrote it), so the runs table compares parents."""
    if mlflow_or_none() is None:
        yield None
        return
    reachable(tracking_uri())
    ended = reconcile_killed(cfg, f"the {entry} run started by pid {os.getpid()}")
    if ended:
        print(f"cgankd: {len(ended)} run(s) of killed processes marked KILLED (tag cgankd.reconciled)", file=sys.stderr)
    tags = {**run_tags(cfg), "cgankd.kind": "pipeline", "cgankd.entry": entry,
            "cgankd.seed": ",".join(str(s) for s in seeds) if seeds is not None else str(cfg.seed)}
    with _run(cfg, run_name(cfg, entry, seeds), None, tags) as tracker:
        tracker.log_params(cfg.flat())
        old = os.environ.get(PARENT_ENV)
        os.environ[PARENT_ENV] = tracker.run_id or f"backlog:{tracker.ref.key}"
        started, metrics = time.time(), cfg.path("metrics.json")
        given, headline = headline is not None, headline or (lambda: evaluation_headline(cfg))
        try:
            yield tracker.run_id
            log_headline(tracker, headline())
        except BaseException:  # a failure after evaluate (register) still shows this run's headline
            if given or (metrics.is_file() and metrics.stat().st_mtime >= started):
                log_headline(tracker, headline())
            raise
        finally:
            if old is None:
                os.environ.pop(PARENT_ENV, None)
            else:
                os.environ[PARENT_ENV] = old


@contextlib.contextmanager
def stage_run(cfg: Config, stage: str, params: list[str] | None = None, trains: bool = False
              ) -> Iterator[NullTracker]:
    """A run for one stage, a child of the pipeline run when there is one. ``params``: the param
    keys or sections the stage reads (its dvc.yaml ``params``); only those are logged (all when None;
    the parent run logs them all)."""
    if mlflow_or_none() is None:
        yield NullTracker()
        return
    parent = os.environ.get(PARENT_ENV) or exp_parent(cfg, run_tags(cfg), errors())  # dvc exp run's own
    with _run(cfg, stage, parent, {"cgankd.stage": stage, **run_tags(cfg)},
              trains and cfg.tracking.system_metrics) as tracker:  # CPU/GPU use while a network trains
        tracker.log_params({k: v for k, v in cfg.flat().items()
                            if params is None or any(k == p or k.startswith(f"{p}.") for p in params)})
        yield tracker
