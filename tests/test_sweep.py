"""Sweeps on a Dask cluster through Prefect (cgankd/sweeps/jobs.py, cgankd/sweeps/dask_runner.py), end to end with
the CLI on a tiny comparison: ``--workers 2`` gives the serial table; a worker SIGKILLed in the
middle of a job costs that job a retry, not the sweep; ``--resume`` after the whole sweep was
killed runs only the missing jobs."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import shrunk
from kit.shim import shim

from cgankd.base.errors import CgankdError
from cgankd.base.faults import ENV, ONCE_ENV
from cgankd.sweeps.dask_runner import check_address
from cgankd.sweeps.jobs import Cluster, Job
from cgankd.sweeps.sweep import run_jobs

BIN = os.path.join(os.path.dirname(sys.executable), "cgankd")
METHODS = ["nokd", "blkd", "cgankd+blkd"]


def compare(tmp_path: Path, work: str, *extra: str, env: dict[str, str] | None = None,
            seeds: tuple[str, ...] = ("0", "1")) -> subprocess.CompletedProcess:
    params = tmp_path / "params.yaml"
    if not params.is_file():
        params.write_text(yaml.safe_dump(shrunk(tmp_path / "unused").to_dict(), sort_keys=False))
    # on Dask the real console script (its workers are spawned from it); serially the fork server's (kit/shim.py)
    cmd = [BIN if "--workers" in extra else str(shim()), "compare", "-p", str(params), "--pairs",
           "resnet8:convnet_xs", "--methods", *METHODS,
           "--seeds", *seeds, "--work", str(tmp_path / work), *extra]
    return subprocess.run(cmd, cwd=tmp_path, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=900)


def prefect_servers(home: Path) -> int:
    """Prefect servers running with this PREFECT_HOME (other tests may run their own meanwhile)."""
    out = subprocess.run(["pgrep", "-f", "prefect.server.api.server:create_app"], capture_output=True, text=True)
    mine = 0
    for pid in out.stdout.split():
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        mine += f"PREFECT_HOME={home}".encode() in env
    return mine


def rows(tmp_path: Path, work: str) -> list[dict]:
    return json.loads((tmp_path / work / "compare_objects.json").read_text())["rows"]


def table(tmp_path: Path, work: str) -> list[str]:
    """The results tables, without what the clock decides: line 0 (minutes, machine) and the training
    minutes (0.0 or 0.1 of a minute, as the machine's load has it)."""
    text = (tmp_path / work / "compare_objects.md").read_text()
    return text.partition("Student training time per run")[0].splitlines()[1:]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> dict:
    """One sweep's life, which both tests below read: seed 0 alone (serial); seeds 0 and 1 with
    ``--resume --reuse``, SIGKILLed in seed 1's first progress bar; resumed again on two Dask workers
    (tracked), the first worker to get half-way through a progress bar SIGKILLed; then, as the
    reference, seed 1 serially beside a copy of the seed 0 results."""
    tmp = tmp_path_factory.mktemp("sweep")
    home = tmp / "prefect"
    off = {"CGANKD_TRACKING": "off", "PREFECT_HOME": str(home)}
    first = compare(tmp, "w", env=off, seeds=("0",))
    assert first.returncode == 0, first.stderr[-3000:]
    done = rows(tmp, "w")
    shutil.copytree(tmp / "w", tmp / "serial")  # the serial reference's seed 0 (its seed 1: at the end)
    cut = compare(tmp, "w", "--resume", "--reuse", env={**off, ENV: "half", ONCE_ENV: str(tmp / "once")})
    after_cut = rows(tmp, "w")
    models = {p: p.stat().st_mtime_ns for p in (tmp / "w").rglob("model.pt")}
    db = tmp / "mlflow.db"
    tracked = {"MLFLOW_TRACKING_URI": f"sqlite:///{db}", "PREFECT_HOME": str(home)}
    again = compare(tmp, "w", "--resume", "--reuse", "--workers", "2",
                    env={**tracked, ENV: "half", ONCE_ENV: str(tmp / "killed")})
    assert again.returncode == 0, again.stderr[-3000:]
    servers = prefect_servers(home)
    serial = compare(tmp, "serial", "--resume", "--reuse", env=off)  # seed 1, serially
    assert serial.returncode == 0, serial.stderr[-3000:]
    return {"tmp": tmp, "done": done, "cut": cut, "after_cut": after_cut, "models": models, "db": db,
            "servers_left": servers, "workers_stderr": again.stderr}


@pytest.mark.slow
def test_compare_on_two_workers_equals_serial_and_survives_a_killed_worker(sweep):
    tmp = sweep["tmp"]
    assert (tmp / "killed").exists()  # a worker was killed in the middle of a job
    assert sweep["servers_left"] == 0  # the sweep's temporary Prefect server is gone, none left by workers
    # its last logs were sent before it stopped (sent at exit, they were retried for ~70 s: a hang)
    assert "Error logging to API" not in sweep["workers_stderr"]
    assert table(tmp, "w") == table(tmp, "serial")  # seed 1 on the workers, seed 0 serially: the serial table
    assert len(rows(tmp, "w")) == 2 * len(METHODS)

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{sweep['db']}")
    exp = client.get_experiment_by_name("cgankd")
    [parent] = client.search_runs([exp.experiment_id], "tags.`cgankd.entry` = 'compare'")
    children = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    names = sorted(r.info.run_name for r in children if r.info.status == "FINISHED")
    # one child per job the workers ran: seed 1's students (seed 0's were in the results already)
    assert [n for n in names if "->" in n] == sorted(f"seed1/resnet8->convnet_xs/{m}" for m in METHODS)


@pytest.mark.slow
def test_resume_after_a_killed_sweep_runs_only_the_missing_jobs(sweep):
    tmp, done = sweep["tmp"], sweep["done"]
    # seeds 0 and 1: seed 0 is in the results; the sweep was SIGKILLed in seed 1's first progress bar
    assert sweep["cut"].returncode == -9 and sweep["after_cut"] == done
    after = rows(tmp, "w")
    assert len(done) == len(METHODS) and after[:len(METHODS)] == done and len(after) == 2 * len(METHODS)
    models = sweep["models"]
    assert all(p.stat().st_mtime_ns == t for p, t in models.items())  # nothing finished was trained again
    new = [p for p in (tmp / "w").rglob("students/*/*/model.pt") if p not in models]
    assert len(new) == len(METHODS) and all("seed1" in str(p) for p in new), new


def test_bad_cluster_settings_fail_in_one_line(tmp_path):
    with pytest.raises(CgankdError, match="--workers: give --workers"):
        Cluster(2, "tcp://127.0.0.1:1")
    with pytest.raises(CgankdError, match="--workers: must be 0"):
        Cluster(-1)
    with pytest.raises(ValueError, match="waits for"):
        run_jobs([Job("b", "os:getcwd", after=("a",))], lambda j, r: None)
    res = compare(tmp_path, "w", "--address", "tcp://127.0.0.1:9")  # nothing listens: at once, before any run
    assert res.returncode == 2 and not (tmp_path / "w").exists()
    assert res.stderr.strip().splitlines() == [
        "cgankd: error: --address: no Dask scheduler answers at 'tcp://127.0.0.1:9' (ConnectionRefusedError); "
        "start one (`dask scheduler`, then `dask worker ADDRESS`) or use --workers N for a local cluster"]
    # another service on the port accepts the connection and never answers Dask's handshake: our deadline
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        address = f"tcp://127.0.0.1:{other.getsockname()[1]}"
        Cluster(0, address)  # it listens: the quick probe passes
        with pytest.raises(CgankdError, match="no Dask scheduler answers at .* \\(TimeoutError\\)"):
            check_address(address, timeout=1)


def test_a_local_cluster_is_tls_and_refuses_a_client_without_the_sweeps_certificate(monkeypatch):
    """The sweep's local cluster, as task_runner configures it, on real Dask: its scheduler speaks TLS only,
    a client with another certificate (or none) is refused, its workers were started with the driver's
    credentials, and a job's own arguments carry none."""
    from distributed import Client, LocalCluster
    from distributed.security import Security

    from cgankd.sweeps.dask_runner import security, task_runner
    from cgankd.sweeps.jobs import driver_env

    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "s3cret-for-the-test")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    sec = security(None)
    runner = task_runner(Cluster(workers=1), "http://127.0.0.1:4200/api", sec)
    kwargs = {**runner.cluster_kwargs, "n_workers": 1}
    assert runner.client_kwargs["security"] is sec and kwargs["security"] is sec
    assert "MLFLOW_TRACKING_PASSWORD" not in driver_env()  # what run_on_dask sends with each job
    assert driver_env()["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5000"
    with LocalCluster(**kwargs) as cluster:
        assert cluster.scheduler_address.startswith("tls://")
        with Client(cluster, security=sec) as ours:
            assert ours.run(os.getenv, "MLFLOW_TRACKING_PASSWORD") == {
                w: "s3cret-for-the-test" for w in ours.scheduler_info()["workers"]}
        for stranger in (Security.temporary(), None):
            with pytest.raises((OSError, TypeError, TimeoutError)):
                Client(cluster.scheduler_address, security=stranger, timeout=3).close()
        plain = cluster.scheduler_address.replace("tls://", "tcp://")
        with pytest.raises(OSError):
            Client(plain, timeout=3).close()
