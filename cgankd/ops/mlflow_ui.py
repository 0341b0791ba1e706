"""What the MLflow UI opens on: the experiment's runs table with the headline columns.

MLflow 3's UI (3.17 here) opens an experiment on its GenAI overview (traces, token usage) unless
the browser chose "Model training" in the switch at the top of the page, which it keeps in the
browser's local storage: the experiment tag ``mlflow.experimentKind`` is set (tracking.py), but
this UI version reads it only when the switch is off. So the pipeline also saves a *shared view*
(an experiment tag ``mlflow.sharedViewState.<key>``, the same one the UI's own "Share" button
writes) whose columns are every parent's headline metrics, and :func:`link` gives the address
that opens the runs table in that view. ``cgankd ui`` serves the store and prints that address.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any
from urllib.parse import urlencode

from cgankd.base.errors import CgankdError
from cgankd.base.net import loopback
from cgankd.base.redact import redact
from cgankd.ops.conflicts import retry_conflict

VIEW = "cgankd-headline"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW}"
MAX_COLUMNS = 30
# the headline in the view: each model's test metric and the gain over NOKD (the parent run holds
# the validation metrics too; "Columns" in the UI adds them)
SHOWN = re.compile(r"(^|/)(\w+_)?test_(acc|mae)$|minus_nokd")
TAGS = ["tags.`cgankd.profile`", "tags.`cgankd.selected`"]


def rank(key: str) -> int:
    """Teacher, NOKD, the other methods, then the gains over NOKD (per pair for ``compare``)."""
    name = key.rpartition("/")[2]
    if "minus_nokd" in name:
        return 3
    return 0 if name.startswith("teacher_") else 1 if name.startswith("nokd_") else 2


def columns(metric_keys: list[str], old: list[str]) -> list[str]:
    """The view's columns: those it had, then this parent's headline metrics, then the tags."""
    shown = sorted((k for k in metric_keys if SHOWN.search(k)), key=lambda k: (k.rpartition("/")[0], rank(k)))
    new = [f"metrics.`{k}`" for k in shown]
    cols = list(dict.fromkeys([c for c in old if c not in TAGS] + new))[:MAX_COLUMNS]
    return cols + TAGS


def save_view(client: Any, experiment_id: str, metric_keys: list[str]) -> None:
    """Add ``metric_keys`` to the experiment's headline view (creating it)."""
    old = client.get_experiment(experiment_id).tags.get(VIEW_TAG)
    try:
        state = json.loads(old) if old else {}
    except json.JSONDecodeError:  # edited by hand: start again
        state = {}
    cols = columns(metric_keys, state.get("selectedColumns", []))
    # two parents ending together both write the new tag: the second write is made again
    retry_conflict(client.set_experiment_tag, experiment_id, VIEW_TAG,
                   json.dumps({"selectedColumns": cols, "columnOrder": cols}))


def link(base_url: str, experiment_id: str) -> str:
    """The runs table of the experiment, as model training, in the headline view."""
    query = urlencode({"workflowType": "machine_learning", "viewStateShareKey": VIEW})
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs?{query}"


def no_mlflow_jobs() -> dict[str, str]:
    """The environment an ``mlflow server`` cgankd starts gets: MLflow's job runner off unless the
    environment turns it on. cgankd runs no MLflow jobs (GenAI scorers, prompt optimisation), and
    the runner is 8 more processes: on 2 cores, one worker on sqlite, 10 processes, 2.38 GB and
    27-29 CPU-s until 15 s after ready with it; 2, 0.49 GB and 5-6 CPU-s without (bench/mlflow_server.py)."""
    return {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": os.environ.get("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")}


def serve(uri: str, experiment: str, host: str, port: int) -> int:
    """``cgankd ui``: ``mlflow server`` on the tracking store (or, for an http(s) tracking server,
    nothing to start) and the address of the experiment's runs table."""
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(uri)
    exp = MlflowClient().get_experiment_by_name(experiment)
    if exp is None:
        raise CgankdError(f"tracking.experiment={experiment}",
                          f"no such experiment in {redact(uri)} (run the pipeline first)")
    if uri.startswith(("http://", "https://")):
        print(f"cgankd: runs table: {redact(link(uri, exp.experiment_id))}")
        return 0
    base = f"http://{host}:{port}"
    if not loopback(host):
        print(f"cgankd: warning: ui on {host} serves this registry to anyone who reaches the port, without "
              "authentication, and lets them change it (runs, models, aliases); keep it on 127.0.0.1 and "
              "reach it through an SSH tunnel, or run the team stack (authenticated)", file=sys.stderr, flush=True)
    print(f"cgankd: serving {redact(uri)}; runs table: {link(base, exp.experiment_id)}  (Ctrl-C stops)", flush=True)
    cmd = [os.path.join(os.path.dirname(sys.executable), "mlflow"), "server", "--backend-store-uri", uri,
           "--host", host, "--port", str(port), "--workers", "1"]
    try:
        return subprocess.call(cmd, env={**os.environ, **no_mlflow_jobs()})
    except KeyboardInterrupt:
        return 0


def run_url(uri: str, run_id: str) -> str | None:
    """The address of a run's page on the http(s) tracking server ``uri`` (no credentials in it), else None."""
    from mlflow.tracking import MlflowClient

    if not uri.startswith(("http://", "https://")):
        return None
    try:
        exp = MlflowClient(uri).get_run(run_id).info.experiment_id
    except Exception:  # noqa: BLE001  (a link is a convenience: an unreachable server gives none)
        return None
    return f"{redact(uri).rstrip('/')}/#/experiments/{exp}/runs/{run_id}"
