"""Prefect as its users run it, against a real local server (`prefect server start` on 127.0.0.1,
stopped by its PID): a process work pool, `prefect deploy --all` from a project folder with the
repository's prefect.yaml and a params.yaml, a `prefect worker` that picks the triggered team retraining
up (its pull steps clone the team's repository and dvc pull; the flow runs, registers the champion
and pushes to the DVC remote), then the promotion deployment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import ROOT, shrunk
from kit import dvc_repo, sh
from kit.live_servers import stop, wait_for
from kit.shim import path_with_shim

from cgankd.serve.process import free_port


def prefect_cli(env: dict, cwd, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    bindir = os.path.dirname(sys.executable)
    done = subprocess.run([os.path.join(bindir, "prefect"), *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.slow
def test_a_worker_runs_the_deployments_that_prefect_deploy_made_from_prefect_yaml(tmp_path):
    from mlflow.tracking import MlflowClient

    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_API_URL": api,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
           "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}",
           "PREFECT_WORKER_QUERY_SECONDS": "2", "PREFECT_LOGGING_LEVEL": "WARNING", "COLUMNS": "200"}
    bindir = os.path.dirname(sys.executable)
    env["PATH"] = path_with_shim()  # the venv's tools; cgankd the fork server's (kit/shim.py)
    project = tmp_path / "project"  # a user's folder: prefect.yaml and params.yaml, no checkout
    project.mkdir()
    (project / "prefect.yaml").write_text((ROOT / "prefect.yaml").read_text())
    (project / "params.yaml").write_text(yaml.safe_dump(shrunk(tmp_path / "artifacts").to_dict(), sort_keys=False))
    # the team's repository, which the team deployment's worker clones (into its own folder, tmp_path)
    origin = dvc_repo(tmp_path / "origin" / "team", shrunk(Path("artifacts"), "student.methods=[nokd]").to_dict())
    sh("cgankd", "dvc-yaml", cwd=origin)
    sh("git", "add", "-A", cwd=origin)
    sh("git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "team", cwd=origin)
    env.update({"CGANKD_GIT_REPOSITORY": str(origin), "XDG_DATA_HOME": str(tmp_path / "xdg")})
    server = subprocess.Popen([os.path.join(bindir, "prefect"), "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, start_new_session=True)
    worker = None
    try:
        wait_for(f"{api}/health", server, 180)
        prefect_cli(env, project, "work-pool", "create", "cgankd", "--type", "process")
        prefect_cli(env, project, "--no-prompt", "deploy", "--all")
        deployments = {d["name"]: d for d in httpx.post(f"{api}/deployments/filter", json={}, timeout=10).json()}
        assert sorted(deployments) == ["cgankd-compare", "cgankd-nightly", "cgankd-promote", "cgankd-team-nightly"]
        nightly = deployments["cgankd-nightly"]
        assert nightly["schedules"][0]["schedule"]["cron"] == "0 3 * * *"
        assert nightly["work_pool_name"] == "cgankd" and nightly["parameters"]["params"] == "params.yaml"
        assert nightly["pull_steps"] == [{"prefect.deployments.steps.set_working_directory":
                                          {"directory": str(project.resolve())}}]
        worker = subprocess.Popen([os.path.join(bindir, "prefect"), "worker", "start", "--pool", "cgankd"],
                                  env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, start_new_session=True)
        where = tmp_path / "worker"  # the process worker's folder for this run (else a temporary one)
        where.mkdir()
        prefect_cli(env, project, "deployment", "run", "cgankd-pipeline/cgankd-team-nightly",
                    "--job-variable", f"working_dir={json.dumps(str(where))}",
                    "--watch", "--watch-timeout", "600", timeout=660)
        assert worker.poll() is None, worker.stdout.read()
        clone = where / "team"  # the pull steps' clone, where the flow ran and from which it pushed
        assert sh("dvc", "status", "--cloud", "--json", cwd=clone).stdout.strip() in ("{}", "")
        assert (tmp_path / "xdg" / "cgankd" / "dvc-store" / "files").is_dir()
        info = json.loads((clone / "artifacts" / "registry.json").read_text())
        assert info["registered"] and info["alias"] == "champion" and info["version"] == 1
        prefect_cli(env, project, "deployment", "run", "cgankd-promote/cgankd-promote", "-p", "margin=0.0",
                    "--watch", "--watch-timeout", "300", timeout=360)
        runs = httpx.post(f"{api}/flow_runs/filter", json={}, timeout=10).json()
        done = sorted((r["name"] != "", r["work_pool_name"], r["state_type"]) for r in runs
                      if r["state_type"] != "SCHEDULED")  # the cron's future runs wait
        assert done == [(True, "cgankd", "COMPLETED")] * 2, runs
        mv = MlflowClient().get_model_version("cgankd-objects", "1")
        assert mv.tags["promotion"] == "is the champion already" or "first version" in mv.tags["promotion"]
        # the registry's lock on a tracking server is this Prefect server's cgankd-registry slot: one holder at a time
        hold = ("import time\nfrom cgankd.ops.registry_lock import registry_lock\n"
                "with registry_lock('http://127.0.0.1:1') as held:\n"
                "    print(held, time.time(), flush=True)\n    time.sleep(2)\n    print(time.time(), flush=True)\n")
        holders = [subprocess.Popen([sys.executable, "-c", hold], env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for _ in range(2)]
        spans = []
        for p in holders:
            out, err = p.communicate(timeout=180)
            assert p.returncode == 0 and out.split()[0] == "True", err[-2000:]
            spans.append(tuple(float(t) for t in out.split()[1:]))
        (_, first_end), (second_start, _) = sorted(spans)
        assert second_start >= first_end, spans
    finally:
        if worker is not None:
            stop(worker)
        stop(server)
    assert server.poll() is not None
