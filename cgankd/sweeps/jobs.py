"""Sweeps as jobs: ``cgankd compare`` and ``cgankd ablate`` describe their work as a list of
independent jobs (with the jobs each one waits for) and hand it to one runner: in this process, in
order (the default, as before), or fanned out over a Dask cluster through Prefect's task runner
(``--workers N`` starts a local cluster, ``--address`` joins an existing one; cgankd/sweeps/dask_runner.py).

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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cgankd.base.errors import CgankdError

# what a job's process needs of the driver's environment: the tracking store, the parent run
FORWARDED_ENV = ("MLFLOW_TRACKING_URI", "CGANKD_PARENT_RUN_ID", "CGANKD_TRACKING", "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                 "PREFECT_API_AUTH_STRING")


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


def driver_env() -> dict[str, str]:
    return {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}


def execute(job: Job, env: dict[str, str]) -> Any:
    """Run one job (in a worker process, or here)."""
    os.environ.update(env)
    module, _, name = job.fn.partition(":")
    return getattr(importlib.import_module(module), name)(**job.kwargs)


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
        env = driver_env()
        for job in jobs:
            on_done(job, execute(job, env))
        return
    from cgankd.sweeps.dask_runner import run_on_dask  # the edge: Prefect and Dask

    run_on_dask(jobs, on_done, cluster, driver_env())
