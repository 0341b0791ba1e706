"""Sweeps on a Dask cluster through Prefect (cgankd/sweeps/jobs.py, cgankd/sweeps/dask_runner.py), end to end with
the CLI on a tiny comparison: ``--workers 2`` gives the serial table; a worker SIGKILLed in the
middle of a job costs that job a retry, not the sweep; ``--resume`` after the whole sweep was
killed runs only the missing jobs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import shrunk

from cgankd.base.errors import CgankdError
from cgankd.base.faults import ENV, ONCE_ENV
from cgankd.sweeps.dask_runner import check_address
from cgankd.sweeps.jobs import Cluster, Job, run_jobs

BIN = os.path.join(os.path.dirname(sys.executable), "cgankd")
METHODS = ["nokd", "blkd", "cgankd+blkd"]


def compare(tmp_path: Path, work: str, *extra: str, env: dict[str, str] | None = None,
            seeds: tuple[str, ...] = ("0", "1")) -> subprocess.CompletedProcess:
    params = tmp_path / "params.yaml"
    if not params.is_file():
        params.write_text(yaml.safe_dump(shrunk(tmp_path / "unused", "threads=1").to_dict(), sort_keys=False))
    cmd = [BIN, "compare", "-p", str(params), "--pairs", "resnet8:convnet_xs", "--methods", *METHODS,
           "--seeds", *seeds, "--work", str(tmp_path / work), *extra]
    return subprocess.run(cmd, cwd=tmp_path, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=900)


def prefect_servers(home: Path) -> int:
    """Prefect servers running with this test's PREFECT_HOME (other tests may run their own meanwhile)."""
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
    return (tmp_path / work / "compare_objects.md").read_text().splitlines()[1:]  # line 0: minutes, machine


@pytest.mark.slow
def test_compare_on_two_workers_equals_serial_and_survives_a_killed_worker(tmp_path):
    home = os.environ["PREFECT_HOME"]  # this test's (conftest)
    serial = compare(tmp_path, "serial")
    assert serial.returncode == 0, serial.stderr[-3000:]
    # every worker process may die once half-way through a progress bar: the first one to get there does
    killed = compare(tmp_path, "dask", "--workers", "2", env={ENV: "half", ONCE_ENV: str(tmp_path / "killed")})
    assert killed.returncode == 0, killed.stderr[-3000:]
    assert (tmp_path / "killed").exists()  # a worker was killed in the middle of a job
    assert prefect_servers(home) == 0  # the sweep's temporary Prefect server is gone, none left by workers
    assert table(tmp_path, "dask") == table(tmp_path, "serial")
    assert len(rows(tmp_path, "dask")) == 2 * len(METHODS)

    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    exp = client.get_experiment_by_name("cgankd")
    parents = client.search_runs([exp.experiment_id], "tags.`cgankd.entry` = 'compare'", order_by=["start_time"])
    assert len(parents) == 2
    for parent in parents:  # the same structure: the upstream stages and one child per student job
        children = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
        names = sorted(r.info.run_name for r in children if r.info.status == "FINISHED")
        assert [n for n in names if "->" in n] == sorted(f"seed{s}/resnet8->convnet_xs/{m}"
                                                        for s in (0, 1) for m in METHODS)


@pytest.mark.slow
def test_resume_after_a_killed_sweep_runs_only_the_missing_jobs(tmp_path):
    off = {"CGANKD_TRACKING": "off"}
    assert compare(tmp_path, "w", env=off, seeds=("0",)).returncode == 0
    done = rows(tmp_path, "w")
    # seeds 0 and 1: seed 0 is in the results; the sweep is SIGKILLed in seed 1's first progress bar
    cut = compare(tmp_path, "w", "--resume", "--reuse", env={**off, ENV: "half", ONCE_ENV: str(tmp_path / "once")})
    assert cut.returncode == -9 and rows(tmp_path, "w") == done
    models = {p: p.stat().st_mtime_ns for p in (tmp_path / "w").rglob("model.pt")}
    again = compare(tmp_path, "w", "--resume", "--reuse", "--workers", "2", env=off)
    assert again.returncode == 0, again.stderr[-3000:]
    after = rows(tmp_path, "w")
    assert len(done) == len(METHODS) and after[:len(METHODS)] == done and len(after) == 2 * len(METHODS)
    assert all(p.stat().st_mtime_ns == t for p, t in models.items())  # nothing finished was trained again
    new = [p for p in (tmp_path / "w").rglob("students/*/*/model.pt") if p not in models]
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
