"""Sweeps as jobs: ``cgankd compare`` and ``cgankd ablate`` describe their work as a list of
independent jobs (with the jobs each one waits for) and hand it to one runner
(``cgankd.sweeps.sweep.run_jobs``): in this process, in order (the default), or fanned out over a
Dask cluster through Prefect's task runner (``--workers N`` starts a local cluster, ``--address``
joins an existing one; cgankd/sweeps/dask_runner.py).

A job names an importable function and its keyword arguments, so a worker on another machine
needs only the installed package and the shared work folder; each job writes only its own folder.
The driver collects results as jobs finish and saves them at once, so what finished survives
whatever happens to the cluster later.
"""

from __future__ import annotations

import importlib
import os
import socket
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from cgankd.base.errors import CgankdError

# what a job's process needs of the driver's environment: the tracking store, the parent run (sent with
# each job) and the credentials, which never travel with a job: a local cluster's workers are started with
# them, an existing cluster's workers hold their own (cgankd/sweeps/dask_runner.py)
FORWARDED_ENV = ("MLFLOW_TRACKING_URI", "CGANKD_PARENT_RUN_ID", "CGANKD_TRACKING", "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT")
SECRET_ENV = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "PREFECT_API_AUTH_STRING")


@dataclass(frozen=True)
class Job:
    key: str  # unique in the sweep, e.g. "seed0/resnet20->convnet_s/cgankd"
    fn: str  # "module:function", called as fn(**kwargs) where the job runs
    kwargs: dict[str, Any] = field(default_factory=dict)
    after: tuple[str, ...] = ()  # keys of the jobs this one needs finished first
    gpu: bool = False  # asks the cluster for one GPU
    about: dict[str, Any] = field(default_factory=dict)  # what the driver files the result under


@dataclass(frozen=True)
class Cluster:
    """Where jobs run: ``workers`` > 0 starts a local Dask cluster, ``address`` joins one; neither
    runs them here, one after another."""

    workers: int = 0
    address: str | None = None

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise CgankdError("--workers", f"must be 0 (in this process) or more, got {self.workers}")
        if self.workers and self.address:
            raise CgankdError("--workers", "give --workers (a local cluster) or --address (an existing one), not both")
        if self.address:
            probe(self.address)

    @property
    def local(self) -> bool:
        return not self.workers and not self.address


def no_scheduler(address: str, why: str) -> CgankdError:
    return CgankdError("--address", f"no Dask scheduler answers at {address!r} ({why}); start one (`dask "
                       "scheduler`, then `dask worker ADDRESS`) or use --workers N for a local cluster")


def probe(address: str, timeout: float = 5.0) -> None:
    """Before anything starts: a tcp:// address where nothing listens is a wrong setting, one line at
    once (Dask's own client retries for its whole connect timeout first, cgankd/sweeps/dask_runner.py)."""
    parts = urllib.parse.urlsplit(address)
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise no_scheduler(address, str(exc)) from None
    if parts.scheme != "tcp" or not host or port is None:
        return  # tls://, inproc://, a name without a port: Dask's client checks those
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise no_scheduler(address, type(exc).__name__) from None


def driver_env(secrets: bool = False) -> dict[str, str]:
    """The driver's settings a job needs; with ``secrets``, its credentials too (jobs in this process,
    a local cluster's workers at their start)."""
    return {k: os.environ[k] for k in (*FORWARDED_ENV, *(SECRET_ENV if secrets else ())) if k in os.environ}


def execute(job: Job, env: dict[str, str]) -> Any:
    """Run one job (in a worker process, or here)."""
    os.environ.update(env)
    module, _, name = job.fn.partition(":")
    return getattr(importlib.import_module(module), name)(**job.kwargs)
