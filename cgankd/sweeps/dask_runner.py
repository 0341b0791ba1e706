"""A sweep's jobs on a Dask cluster, through Prefect's ``DaskTaskRunner`` (prefect-dask).

Why Dask and not Ray: prefect-dask and distributed are pure Python wheels (Ray ships a ~70 MB
native runtime with its own object store and daemons, heavy on a 2-core box); a local cluster is
one call; resources (``GPU=1``) are plain worker annotations; and ``dask-cuda`` / ``dask-jobqueue``
/ ``dask-kubernetes`` start the same kind of cluster on GPUs, SLURM or Kubernetes.

- Every job is one Prefect task run (named after the job) submitted with ``wait_for`` its upstream
  jobs; a job that needs a GPU asks the scheduler for ``GPU=1`` (workers advertise their GPUs:
  ``dask worker --resources GPU=1``; the local cluster does when CUDA is usable).
- A worker that dies in the middle of a job costs that job a new attempt elsewhere: Dask's
  scheduler moves the tasks of a lost worker to the living ones (``distributed.scheduler.
  allowed-failures``), and Prefect retries a job whose run failed for an infrastructure reason
  (a killed or lost worker, a closed connection), never for an error raised by the job itself.
- Results reach the driver as jobs finish and are saved at once.
- Every connection is TLS with mutual certificates. A local cluster gets a certificate made for the
  sweep (``Security.temporary()``): a client or worker without it is refused, so another local user
  cannot run code as the sweep's user. An existing cluster (``--address tls://...``) uses the
  certificates of Dask's configuration (``distributed.comm.tls.*``); a plain ``tcp://`` address runs
  with a warning. Credentials (MLflow's user and password, Prefect's auth string) never travel with a
  job: a local cluster's workers are started with them, an existing cluster's workers hold their own.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from cgankd.base.errors import CgankdError
from cgankd.sweeps.jobs import Cluster, Job, driver_env, execute, no_scheduler

RETRIES = 2
CONNECT_TIMEOUT_S = 10
DRAIN_TIMEOUT_S = 10


def infrastructure_failure(exc: BaseException | None) -> bool:
    """A lost worker or connection: worth another attempt. Anything the job raised is not."""
    from distributed import KilledWorker
    from distributed.comm.core import CommClosedError

    return isinstance(exc, (KilledWorker, CommClosedError, ConnectionError))


def _retry_condition(task: Any, task_run: Any, state: Any) -> bool:
    try:
        state.result()
    except BaseException as exc:  # noqa: BLE001  (the job's exception, inspected, not handled)
        return infrastructure_failure(exc)
    return False


def check_address(address: str, timeout: float = CONNECT_TIMEOUT_S, sec: Any = None) -> None:
    """One line when no scheduler answers within ``timeout``, instead of a hang and a traceback. The
    deadline is ours: Dask's client waits without end on a peer that accepts the connection and never
    answers its handshake (another service on that port; seen with an HTTP server)."""
    import asyncio

    from distributed import Client

    async def connect() -> None:
        client = Client(address, timeout=timeout, asynchronous=True, security=sec)
        try:
            await asyncio.wait_for(client, timeout + 2)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), 2)

    try:
        asyncio.run(connect())
    except (OSError, TimeoutError, ValueError) as exc:
        raise no_scheduler(address, type(exc).__name__) from None


@contextlib.contextmanager
def prefect_api(cluster: Cluster) -> Iterator[str]:
    """The Prefect API the driver and every worker report to: ``PREFECT_API_URL`` when set; for a
    local cluster without it, one temporary server for the sweep (left to itself, each worker
    process would start its own, and a killed worker would leave its server behind)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url = PREFECT_API_URL.value()
    if url:
        yield url
        return
    if cluster.address:
        raise CgankdError("PREFECT_API_URL", "a sweep on an existing cluster reports to a Prefect server that its "
                          "workers reach: set PREFECT_API_URL here and on the workers (`make team-stack` starts one)")
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as STARTUP

    server = SubprocessASGIServer()
    server.start(timeout=max(120, STARTUP.value()))  # Prefect's 20 s default times out on 2 busy cores
    try:
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            yield server.api_url
    finally:
        try:
            send_pending()  # while the server still answers
        finally:
            server.stop()


def send_pending() -> None:
    """Send the logs and events Prefect still holds (the flow's last ones: it sends them in batches
    every few seconds). Left to the exit, they went to the sweep's server after it had stopped, and
    were retried for ~70 s after the sweep had finished ("--- Error logging to API ---")."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=DRAIN_TIMEOUT_S)


def scratch() -> str:
    """A private scratch folder for the local cluster's workers (0700, removed at exit)."""
    import dask

    path = tempfile.mkdtemp(prefix="cgankd-dask-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    dask.config.set({"temporary-directory": path})  # dask's own work-space locks too
    return path


def security(address: str | None) -> Any:
    """The sweep's TLS: a certificate made for a local cluster, or Dask's configured certificates for an
    existing ``tls://`` one; None for a plain ``tcp://`` address."""
    from distributed.security import Security

    if address is None:
        return Security.temporary()
    if address.startswith("tls://"):
        return Security()  # distributed.comm.tls.{ca-file, client.cert, client.key} of Dask's config
    return None


def task_runner(cluster: Cluster, api_url: str, sec: Any) -> Any:
    from prefect_dask import DaskTaskRunner

    from cgankd.compute.device import cuda_usable

    client = {"security": sec} if sec is not None else {}
    if cluster.address:
        return DaskTaskRunner(address=cluster.address, client_kwargs=client)
    kwargs: dict[str, Any] = {"n_workers": cluster.workers, "threads_per_worker": 1, "processes": True,
                              "dashboard_address": None, "silence_logs": logging.WARNING, "security": sec,
                              "env": {"PREFECT_API_URL": api_url, **driver_env(secrets=True)},  # at their start
                              "local_directory": scratch()}  # not /tmp/dask-scratch-space: ours alone
    if cuda_usable():
        kwargs["resources"] = {"GPU": 1}
    return DaskTaskRunner(cluster_kwargs=kwargs, client_kwargs=client)


def run_on_dask(jobs: list[Job], on_done: Callable[[Job, Any], None], cluster: Cluster, env: dict[str, str]) -> None:
    import dask
    from prefect import flow, task
    from prefect.futures import as_completed

    run_job = task(execute, name="cgankd-job", retries=RETRIES, retry_condition_fn=_retry_condition,
                   persist_result=False)
    by_key = {job.key: job for job in jobs}

    @flow(name="cgankd-sweep", log_prints=True)
    def sweep() -> list[str]:
        futures: dict[str, Any] = {}
        for job in jobs:
            gpu = dask.annotate(resources={"GPU": 1}) if job.gpu else contextlib.nullcontext()
            with gpu:
                futures[job.key] = run_job.with_options(task_run_name=job.key).submit(
                    job, env, wait_for=[futures[k] for k in job.after])
        keys = {id(f): k for k, f in futures.items()}
        failed = []
        for fut in as_completed(list(futures.values())):
            key = keys[id(fut)]
            try:
                result = fut.result()
            except Exception as exc:  # noqa: BLE001  (reported with the others below)
                failed.append(f"{key}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
                continue
            on_done(by_key[key], result)
        return failed

    sec = security(cluster.address)
    if cluster.address:
        check_address(cluster.address, sec=sec)
        if sec is None:
            print(f"cgankd: warning: --address {cluster.address} is not TLS: jobs and results travel in clear and "
                  "anyone who reaches the scheduler can join it (start it with --tls-ca-file, --tls-cert and "
                  "--tls-key, and give tls://)", file=sys.stderr)
    try:
        with prefect_api(cluster) as url:
            failed = sweep.with_options(task_runner=task_runner(cluster, url, sec))()
    except CgankdError:
        raise
    except (OSError, TimeoutError) as exc:
        where = cluster.address or f"the local cluster of {cluster.workers} workers"
        raise CgankdError("--address" if cluster.address else "--workers",
                          f"lost {where} ({type(exc).__name__}); finished jobs are saved: "
                          "re-run with --resume") from None
    if failed:
        raise CgankdError("sweep", f"{len(failed)} of {len(jobs)} jobs failed (finished ones are saved; fix and "
                          f"re-run with --resume): {'; '.join(failed[:3])}")
