"""Tracking that survives the tracking server going away mid-run.

A stage's logging goes through a :class:`GuardedTracker`. The first call that fails with a
connection or server error switches it (and every later stage of the process) to *offline*: one
line on stderr says so, the stage goes on and writes its outputs as usual, and every call it could
not make (params, metrics with their step and time, tags, artifacts by path, the run's end) is
appended to ``<out_dir>/tracking-backlog.jsonl``. ``cgankd tracking-replay`` logs that backlog
once the server is back: runs that were never created are created (children under their parent),
and the file is renamed ``tracking-backlog.replayed-<time>.jsonl``.

A backlog is a file anyone who can write the folder can edit, so replay trusts it only as far as
it can check: it uploads only files inside the backlog's own folder (the run's out_dir), and it
logs only to runs it creates itself or that carry the tag ``cgankd.backlog`` naming this very
backlog (every run cgankd starts has it); any other call is skipped and counted as refused.

MLflow's own HTTP retries (7 tries with back-off, 120 s timeout each: minutes per call) are
shortened to 2 tries and 20 s unless the environment sets ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` /
``MLFLOW_HTTP_REQUEST_TIMEOUT``: a training job should not stall on its tracking server.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from cgankd.base.errors import CgankdError
from cgankd.base.io import open_private
from cgankd.base.redact import redact
from cgankd.ops.conflicts import experiment
from cgankd.ops.datasets import dataset_input, describe

NAME = "tracking-backlog.jsonl"
OWNER_TAG = "cgankd.backlog"  # on every run cgankd starts: the backlog that may replay into it
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}
_offline: dict[str, str] = {}  # tracking uri -> why, for this process


def errors() -> tuple[type[BaseException], ...]:
    """What a tracking server that went away raises (not programming errors)."""
    import requests
    from mlflow.exceptions import MlflowException

    return (MlflowException, requests.exceptions.RequestException, ConnectionError, TimeoutError)


def offline(uri: str) -> bool:
    return uri in _offline


def went_offline(uri: str, what: str, exc: BaseException, backlog: Path) -> None:
    if uri not in _offline:
        _offline[uri] = f"{type(exc).__name__}"
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        print(f"cgankd: tracking: {redact(uri)} failed while {what} ({redact(first)}); the run goes on and writes its "
              f"outputs; what it cannot log is kept in {backlog}: `cgankd tracking-replay` logs it once the "
              "server is back", file=sys.stderr, flush=True)


class Ref:
    """A run as the backlog knows it: its id once created, else a local key (and its parent's)."""

    def __init__(self, name: str, experiment: str, parent: str | None) -> None:
        self.key = uuid.uuid4().hex
        self.name, self.experiment, self.parent = name, experiment, parent
        self.run_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "name": self.name, "experiment": self.experiment, "parent": self.parent,
                "run_id": self.run_id}


def clean_params(params: dict[str, Any]) -> dict[str, str]:
    """Param values as MLflow keeps them: strings of at most 500 characters, None as "null"."""
    return {k: ("null" if v is None else str(v))[:500] for k, v in params.items()}


class GuardedTracker:
    """The stage's tracker (the interface of cgankd.base.tracker.NullTracker): logs through the MLflow client
    while the server answers, into the backlog once it does not."""

    def __init__(self, uri: str, ref: Ref, backlog: Path) -> None:
        self.uri, self.ref, self.backlog = uri, ref, backlog

    @property
    def run_id(self) -> str | None:
        return self.ref.run_id

    def _do(self, what: str, op: dict[str, Any], call: Any = None) -> None:
        """Make the call (default: ``apply`` the op) while the server answers; else record the op."""
        if self.ref.run_id is not None and not offline(self.uri):
            try:
                if call is not None:
                    call()
                else:
                    apply(self._client(), self.ref.run_id, op)
                return
            except errors() as exc:
                went_offline(self.uri, f"{self.ref.name}: {what}", exc, self.backlog)
        record(self.backlog, self.ref, op)

    def _client(self) -> Any:
        from mlflow.tracking import MlflowClient

        return MlflowClient(self.uri)

    def log_params(self, params: dict[str, Any]) -> None:
        self._do("logging params", {"op": "params", "params": clean_params(params)})

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        vals = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and k != "step"}
        self._do("logging metrics", {"op": "metrics", "metrics": vals, "step": step or 0,
                                     "time": int(time.time() * 1000)})

    def log_artifact(self, path: str | Path | None, folder: str | None = None) -> None:
        if path is None or not Path(path).exists():  # None: a figure that was not drawn
            return
        path = str(Path(path).resolve())
        self._do(f"logging {Path(path).name}", {"op": "artifact", "path": path, "folder": folder})

    def set_tags(self, tags: dict[str, str]) -> None:
        self._do("setting tags", {"op": "tags", "tags": tags})

    def log_input(self, name: str, path: Path, context: str) -> None:
        """A data set the run read, by its DVC md5 (hashed now: the version read, not a later one)."""
        if Path(path).exists():
            self._do(f"logging input {name}", {"op": "input", **describe(name, Path(path), context)})

    def end(self, mlflow: Any, status: str) -> None:
        """End the run through MLflow's active-run stack (replayed: set_terminated)."""
        self._do("ending its run", {"op": "end", "status": status}, lambda: mlflow.end_run(status))


def apply(client: Any, run_id: str, op: dict[str, Any]) -> None:
    """One tracker call, made live or replayed from the backlog."""
    from mlflow.entities import Metric, Param, RunTag

    kind = op["op"]
    if kind == "params":
        client.log_batch(run_id, params=[Param(k, v) for k, v in op["params"].items()])
    elif kind == "metrics":
        client.log_batch(run_id, metrics=[Metric(k, v, op["time"], op["step"]) for k, v in op["metrics"].items()])
    elif kind == "tags":
        client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in op["tags"].items()])
    elif kind == "artifact" and Path(op["path"]).exists():
        client.log_artifact(run_id, op["path"], op["folder"])
    elif kind == "input":
        client.log_inputs(run_id, datasets=[dataset_input(op)])
    elif kind == "end":
        client.set_terminated(run_id, op["status"])


def record(backlog: Path, ref: Ref, op: dict[str, Any]) -> None:
    """Append one call to the backlog (a line per call, flushed: a crash loses at most that line)."""
    backlog.parent.mkdir(parents=True, exist_ok=True)
    with open_private(backlog, append=True) as f:  # never through a link planted at its path
        f.write(json.dumps({"run": ref.as_dict(), **op}) + "\n")
        f.flush()


def replay(uri: str, backlog: Path) -> dict[str, int]:
    """Log a backlog to the tracking server at ``uri``; returns counts. Resumable: the calls done
    so far and the runs created are kept beside it, so a replay cut short never logs one twice."""
    from mlflow.tracking import MlflowClient

    from cgankd.base.io import read_json, write_json

    if not backlog.is_file():
        raise CgankdError(str(backlog), "no tracking backlog here (nothing failed to log)")
    lines = [json.loads(x) for x in backlog.read_text().splitlines() if x.strip()]
    state_path = backlog.with_suffix(".progress.json")
    state = read_json(state_path) if state_path.is_file() else {"applied": 0, "ids": {}, "created": 0}
    ids: dict[str, str] = state["ids"]  # local key -> run id
    state.setdefault("refused", 0)
    client = MlflowClient(uri)
    me, root = str(backlog.resolve()), backlog.resolve().parent
    owned: dict[str, bool] = {run_id: True for run_id in ids.values()}

    def ours(run_id: str) -> bool:
        """A run this backlog may touch: created by this replay, or tagged with this backlog."""
        if run_id not in owned:
            try:
                owned[run_id] = client.get_run(run_id).data.tags.get(OWNER_TAG) == me
            except errors():
                owned[run_id] = False
        return owned[run_id]

    try:
        for i, entry in enumerate(lines[state["applied"]:], start=state["applied"]):
            run = entry["run"]
            run_id = run["run_id"] or ids.get(run["key"])
            inside = entry["op"] != "artifact" or Path(str(entry.get("path"))).resolve().is_relative_to(root)
            if (run_id is not None and not ours(run_id)) or not inside:
                state["refused"] += 1
            else:
                if run_id is None:
                    exp_id = experiment(client, run["experiment"]).experiment_id
                    parent = run["parent"] or ""
                    parent = ids.get(parent.removeprefix("backlog:")) if parent.startswith("backlog:") else parent
                    tags = {"mlflow.parentRunId": parent} if parent else {}  # a new child changes no parent
                    run_id = client.create_run(exp_id, run_name=run["name"], tags=tags).info.run_id
                    owned[run_id] = True
                    state["created"] += 1
                ids[run["key"]] = run_id
                apply(client, run_id, entry)
            state["applied"] = i + 1
            write_json(state_path, state)
    except errors() as exc:
        raise CgankdError(uri, f"still failing ({type(exc).__name__}); {state['applied']} of {len(lines)} "
                          "backlog calls are logged, the rest is kept: replay again later") from None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backlog.rename(backlog.with_name(f"tracking-backlog.replayed-{stamp}.jsonl"))
    state_path.unlink()
    return {"calls": len(lines), "runs_created": state["created"], "refused": state["refused"]}


def http_defaults() -> None:
    for k, v in HTTP_DEFAULTS.items():
        os.environ.setdefault(k, v)
