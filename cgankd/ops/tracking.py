"""The only module that talks to MLflow: stage runs nested under a pipeline run, and the registry.

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
from cgankd.config import Config
from cgankd.ops.backlog import NAME as BACKLOG
from cgankd.ops.backlog import OWNER_TAG, GuardedTracker, Ref, errors, http_defaults, offline, went_offline
from cgankd.ops.reconcile import process_tags, reconcile
from cgankd.ops.registry_lock import COMPLETE_TAG, clean_half_made, complete, registry_lock

PARENT_ENV = "CGANKD_PARENT_RUN_ID"
# MLflow 3's UI opens an experiment on its GenAI overview (traces) unless this tag says otherwise
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
ENTRY_POINTS = ("pipeline", "dvc-repro", "prefect-pipeline")  # parents of one pipeline, named alike
_NOTICE_SHOWN = False
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


class NullTracker:
    run_id: str | None = None

    def log_params(self, params: dict[str, Any]) -> None: ...
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None: ...
    def log_artifact(self, path: str | Path | None, folder: str | None = None) -> None: ...
    def set_tags(self, tags: dict[str, str]) -> None: ...


def _mlflow(notice: bool = True):
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
                  "(pip install 'cgankd[track]' to track)", file=sys.stderr)
        return None
    quiet_telemetry()
    http_defaults()
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
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
    with open(db.with_name(db.name + ".init-lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes
        MlflowClient(uri).search_experiments(max_results=1)
    _INITIALISED.add(uri)


def _experiment(mlflow: Any, cfg: Config) -> None:
    """Make the experiment current, created if missing. Two pipelines starting together on a new
    server race to create it: the loser finds it created and uses it (not an outage)."""
    from mlflow.exceptions import MlflowException

    try:
        mlflow.set_experiment(cfg.tracking.experiment)
    except MlflowException as exc:
        if getattr(exc, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
            raise
        mlflow.set_experiment(cfg.tracking.experiment)
    mlflow.set_experiment_tag(*EXPERIMENT_KIND)


def reconcile_killed(cfg: Config, by: str) -> list[str]:
    """Ends as KILLED the experiment's RUNNING runs whose process on this host is gone; returns
    their ids (none when tracking is off, the experiment is new or the server does not answer)."""
    mlflow = _mlflow()
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
    mlflow = _mlflow(notice=False)  # the error says it
    if mlflow is None:
        raise CgankdError(what, "MLflow is not available (CGANKD_TRACKING=off, or pip install 'cgankd[track]')")
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


def _start(mlflow: Any, cfg: Config, name: str, parent: str | None, tags: dict[str, str]) -> GuardedTracker:
    """Start a run (nested under the active parent, or a child of ``parent`` by id); when the
    server does not answer, a tracker that logs into the backlog."""
    uri, backlog = tracking_uri(), cfg.path(BACKLOG).resolve()
    # tracking-replay touches only runs that carry their backlog's path; a run whose process is
    # gone is found by its pid and host (cgankd/reconcile.py)
    tags = {**tags, OWNER_TAG: str(backlog), **process_tags()}
    ref = Ref(name, cfg.tracking.experiment, parent)
    if not offline(uri) and not (parent or "").startswith("backlog:"):
        try:
            _experiment(mlflow, cfg)
            active = mlflow.active_run()
            if active is not None and active.info.run_id == parent:
                run = mlflow.start_run(run_name=name, nested=True, tags=tags)
            else:
                run = mlflow.start_run(run_name=name, parent_run_id=parent, tags=tags)
            ref.run_id = run.info.run_id
            return GuardedTracker(uri, ref, backlog)
        except errors() as exc:
            went_offline(uri, f"{name}: starting its run", exc, backlog)
    tracker = GuardedTracker(uri, ref, backlog)
    tracker.set_tags(tags)  # into the backlog: the run is created when it is replayed
    return tracker


@contextlib.contextmanager
def _run(cfg: Config, name: str, parent: str | None, tags: dict[str, str]) -> Iterator[GuardedTracker]:
    mlflow = _mlflow()
    tracker = _start(mlflow, cfg, name, parent, tags)
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
        raise CgankdError("MLFLOW_TRACKING_URI", f"{uri} {why}: start the tracking server (`make team-stack` "
                          "starts one to try), point MLFLOW_TRACKING_URI at a running one, or set "
                          "CGANKD_TRACKING=off") from None


@contextlib.contextmanager
def pipeline_run(cfg: Config, entry: str = "pipeline", seeds: list[int] | None = None,
                 headline: Callable[[], dict[str, Any]] | None = None) -> Iterator[str | None]:
    """A parent run; stage runs started inside (or in child processes, via the environment)
    nest under it. Yields the run id. ``entry``: what started it (tag ``cgankd.entry``). The
    parent gets the headline metrics (default: the evaluate stage's ``metrics.json``; after a
    failure only if this run wrote it), so the runs table compares parents."""
    if _mlflow() is None:
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
def stage_run(cfg: Config, stage: str, params: list[str] | None = None) -> Iterator[NullTracker]:
    """A run for one stage, a child of the pipeline run when there is one. ``params``: the param
    keys or sections the stage reads (its dvc.yaml ``params``); only those are logged (all when None;
    the parent run logs them all)."""
    if _mlflow() is None:
        yield NullTracker()
        return
    with _run(cfg, stage, os.environ.get(PARENT_ENV), {"cgankd.stage": stage, **run_tags(cfg)}) as tracker:
        tracker.log_params({k: v for k, v in cfg.flat().items()
                            if params is None or any(k == p or k.startswith(f"{p}.") for p in params)})
        yield tracker


def register_student(cfg: Config, onnx_path: Path, torch_model: Any, sample: Any, metric: float,
                     info: dict[str, Any], tracker: NullTracker) -> dict[str, Any]:
    """Log the student as ONNX and PyTorch models, register both, and move the aliases
    (``promote``: champion only when the test metric improves by more than the margin)."""
    if _mlflow() is None or not isinstance(tracker, GuardedTracker):
        return {"registered": False, "reason": "tracking is off"}
    try:
        if tracker.run_id is None or offline(tracker.uri):
            raise ConnectionError("unreachable earlier in this run")
        return _register(cfg, onnx_path, torch_model, sample, metric, info)
    except errors() as exc:
        raise CgankdError(f"register ({tracking_uri()})", f"the tracking server failed ({type(exc).__name__}): "
                          "the student is not registered and no alias moved (aliases move only after a "
                          "version's files are stored); its ONNX file is in export/; re-run `cgankd register` "
                          "when the server is back") from None


def _register(cfg: Config, onnx_path: Path, torch_model: Any, sample: Any, metric: float,
              info: dict[str, Any]) -> dict[str, Any]:
    """Under the registry's lock (cgankd/ops/registry_lock.py): clean up, then register."""
    from mlflow.tracking import MlflowClient

    name = cfg.model_name
    client = MlflowClient()
    with registry_lock(tracking_uri()) as held:
        gone = clean_half_made(client, name, held)
        if gone:
            print(f"register: deleted what an interrupted register left: {', '.join(gone)}", file=sys.stderr)
        same_metric(_champion(client, name), name, info["metric_name"], "this student")  # before logging anything
        return _register_locked(cfg, client, onnx_path, torch_model, sample, metric, info)


def _register_locked(cfg: Config, client: Any, onnx_path: Path, torch_model: Any, sample: Any, metric: float,
                     info: dict[str, Any]) -> dict[str, Any]:
    """The versions, their pairing tags, then ``test_metric`` (complete), then the aliases."""
    import mlflow.onnx
    import mlflow.pytorch
    import onnx
    from mlflow.models import infer_signature

    from cgankd.base import faults

    name = cfg.model_name
    out = torch_model(sample).detach().numpy()
    signature = infer_signature(sample.numpy(), out)
    tags = {"metric_name": info["metric_name"], "task": cfg.task, "method": info["method"],
            "git_commit": git_commit()}
    from cgankd.serve.runtime import choose_providers

    # providers recorded in MLmodel: CUDA only where this machine can use it (no CUDA error lines)
    onnx_info = mlflow.onnx.log_model(onnx.load(str(onnx_path)), name="student_onnx",
                                      signature=signature, registered_model_name=name,
                                      input_example=sample.numpy()[:1],
                                      onnx_execution_providers=choose_providers("auto"))
    version = str(onnx_info.registered_model_version)
    faults.point("register-onnx")  # the ONNX version exists, nothing else
    torch_info = mlflow.pytorch.log_model(torch_model, name="student_pytorch", signature=signature,
                                          registered_model_name=f"{name}-pytorch", input_example=sample)
    twin = str(torch_info.registered_model_version)
    faults.point("register-pytorch")  # both versions exist, unpaired, untagged
    client.set_model_version_tag(f"{name}-pytorch", twin, "onnx_version", version)
    for k, v in {**tags, "pytorch_version": twin}.items():
        client.set_model_version_tag(name, version, k, v)
    if info.get("card"):  # the model card (cgankd/ops/version_card.py): the registry's description of both versions
        client.update_model_version(name, version, description=info["card"])
        client.update_model_version(f"{name}-pytorch", twin, description=f"{info['card']}\nThe PyTorch weights of "
                                    f"`{name}` version {version} (the ONNX model).")
    faults.point("register-tags")  # paired and tagged, not complete
    client.set_model_version_tag(name, version, COMPLETE_TAG, f"{metric:.6g}")  # last: now complete
    result = promote(name, int(version), cfg.tracking.promotion_margin)
    return {"registered": True, **result, "uri": f"models:/{name}/{version}"}


def _champion(client: Any, name: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, "champion")
    except MlflowException:  # no champion (or no model) yet
        return None


def same_metric(champ: Any, name: str, metric_name: str, who: str) -> None:
    """A version scored by another metric than the champion (a regressor against a classifier)
    is never compared with it."""
    if champ is not None and champ.tags.get("metric_name") != metric_name:
        raise CgankdError(f"registered model {name}", f"its champion v{champ.version} is scored by "
                          f"{champ.tags.get('metric_name')}, {who} by {metric_name}; "
                          "set tracking.model_name to keep them apart")


def promote(name: str, version: int | None, margin: float, force: bool = False) -> dict[str, Any]:
    """Move ``champion`` to ``version`` (default: the newest) if its test metric beats the
    champion's by more than ``margin`` (or ``force``: a rollback, a re-export); else alias it
    ``challenger``. The reason is tagged. Only complete versions (cgankd/ops/registry_lock.py)."""
    require_mlflow(f"registered model {name}")
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    with registry_lock(tracking_uri()):  # the champion is read and the alias moved by one process at a time
        try:
            if version is None:  # the newest complete version
                version = max(int(v.version) for v in client.search_model_versions(f"name = '{name}'") if complete(v))
            mv = client.get_model_version(name, str(version))
        except (MlflowException, ValueError) as exc:
            raise CgankdError(f"registered model {name}", f"no version {version or '(none registered)'}") from exc
        if not complete(mv):
            raise CgankdError(f"{name} v{version}", "is incomplete (its registration was interrupted, or it was "
                              "not registered by cgankd register): never promoted or served; the next "
                              "`cgankd register` deletes it")
        return _promote_locked(client, name, mv, margin, force)


def _promote_locked(client: Any, name: str, mv: Any, margin: float, force: bool) -> dict[str, Any]:
    from cgankd.base import faults
    from cgankd.ops.promotion import Decision, decide

    version = int(mv.version)
    metric, metric_name = float(mv.tags[COMPLETE_TAG]), mv.tags["metric_name"]
    champ = _champion(client, name)
    if champ is not None and int(champ.version) == int(version):
        decision_reason, alias = "is the champion already", "champion"
    else:
        same_metric(champ, name, metric_name, f"v{version}")
        champ_metric = float(champ.tags.get("test_metric", "nan")) if champ is not None else None
        d = decide(metric_name, metric, champ_metric, champ.version if champ else None,
                   metric_name.endswith("acc"), margin)
        if force:
            d = Decision(True, f"forced by the operator ({d.reason})")
        alias = "champion" if d.promote else "challenger"
        decision_reason = d.reason
        faults.point("promote")  # decided, no alias moved
        _move_alias(client, name, str(version), mv.aliases, alias, d.promote)
        twin = mv.tags.get("pytorch_version")  # None: registered before the twins were paired by tag
        if twin is not None:  # models:/<name>-pytorch@champion loads the weights of models:/<name>@champion
            twin_aliases = client.get_model_version(f"{name}-pytorch", twin).aliases
            _move_alias(client, f"{name}-pytorch", twin, twin_aliases, alias, d.promote)
        client.set_model_version_tag(name, str(version), "promotion", decision_reason)
    return {"model_name": name, "version": int(version), "alias": alias, "reason": decision_reason,
            "margin": margin}


def _move_alias(client: Any, model: str, version: str, aliases: list[str], alias: str, promoted: bool) -> None:
    """``alias`` to ``model`` ``version`` (which holds ``aliases`` now); a challenger that won is the champion
    now, no longer the challenger."""
    client.set_registered_model_alias(model, alias, version)
    if promoted and "challenger" in aliases:
        client.delete_registered_model_alias(model, "challenger")


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``models:/<name>@<alias>`` or ``models:/<name>/<version>`` -> (name, alias, version)."""
    rest = uri.removeprefix("models:/")
    if "@" in rest:
        name, alias = rest.rsplit("@", 1)
        if name and alias:
            return name, alias, None
    elif "/" in rest:
        name, version = rest.rsplit("/", 1)
        if name and version.isdigit():
            return name, None, version
    raise CgankdError(uri, "expected models:/<name>@<alias> or models:/<name>/<version>")


def fetch_registered(uri: str, dst: Path) -> tuple[Path, dict[str, Any]]:
    """Download a registered ONNX model version into ``dst``; returns its .onnx path and (name,
    version, alias, uri, run id, tags). An unknown model, alias or version is a one-line error; so
    is a sqlite registry that does not exist yet (said at once, and no empty database is left)."""
    db = tracking_uri().removeprefix("sqlite:///") if tracking_uri().startswith("sqlite:///") else None
    if db is not None and not Path(db).is_file():
        raise CgankdError(uri, f"no model registry yet ({db} does not exist): run `make demo` or `cgankd run` "
                          "to register a student first, set MLFLOW_TRACKING_URI to your registry, or serve an "
                          "exported .onnx file")
    require_mlflow(uri)
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    name, alias, version = parse_model_uri(uri)
    client = MlflowClient()
    try:
        mv = client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
    except MlflowException as exc:
        try:
            known = sorted(client.get_registered_model(name).aliases)
        except MlflowException:
            raise CgankdError(uri, f"no registered model {name!r} in {tracking_uri()}") from exc
        what = f"alias {alias!r}" if alias else f"version {version}"
        raise CgankdError(uri, f"model {name!r} has no {what} (aliases: {', '.join(known) or 'none'})") from exc
    if not complete(mv):
        raise CgankdError(uri, f"version {mv.version} is incomplete (its registration was interrupted, or it was "
                          "not registered by cgankd register): not served")
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{mv.version}", dst_path=str(dst)))
    found = sorted(local.rglob("*.onnx"))
    if not found:
        raise CgankdError(uri, f"version {mv.version} holds no .onnx file (is it the PyTorch flavour?)")
    info = {"name": name, "version": int(mv.version), "alias": alias, "uri": uri, "run_id": mv.run_id,
            "tags": dict(mv.tags)}
    return found[0], info
