"""A real local Prefect server (`prefect server start` on 127.0.0.1, stopped by its PID): the
deployments from flows/deploy.py are created, a retraining run is triggered and completes, and
its register stage made the champion decision; the promotion deployment runs too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest
import yaml
from conftest import ROOT, shrunk
from server_kit import stop, wait_for

from cgankd.serve.process import free_port


@pytest.mark.slow
def test_local_prefect_server_runs_the_retraining_deployment(tmp_path):
    from mlflow.tracking import MlflowClient

    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_API_URL": api,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
           "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}",
           "PREFECT_RUNNER_POLL_FREQUENCY": "2", "PREFECT_LOGGING_LEVEL": "WARNING"}
    bindir = os.path.dirname(sys.executable)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(shrunk(tmp_path / "artifacts").to_dict(), sort_keys=False))
    server = subprocess.Popen([os.path.join(bindir, "prefect"), "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, start_new_session=True)
    runner = None
    try:
        wait_for(f"{api}/health", server, 180)
        runner = subprocess.Popen([sys.executable, str(ROOT / "flows" / "deploy.py"), "--cron", "0 3 * * *",
                                   "-p", str(params), "-S", "student.methods=[nokd]"], env=env, cwd=tmp_path,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  start_new_session=True)
        deadline = time.monotonic() + 120
        while True:  # the runner registers the deployments
            assert runner.poll() is None, runner.stdout.read()
            r = httpx.post(f"{api}/deployments/filter", json={}, timeout=10)
            names = sorted(d["name"] for d in r.json())
            if names == ["cgankd-nightly", "cgankd-promote"]:
                break
            assert time.monotonic() < deadline, names
            time.sleep(1)
        nightly = next(d for d in r.json() if d["name"] == "cgankd-nightly")
        assert nightly["schedules"][0]["schedule"]["cron"] == "0 3 * * *"
        assert nightly["parameters"] == {"params": str(params), "overrides": ["student.methods=[nokd]"]}
        prefect = os.path.join(bindir, "prefect")
        run = subprocess.run([prefect, "deployment", "run", "cgankd-pipeline/cgankd-nightly", "--watch",
                              "--watch-timeout", "600"], env=env, capture_output=True, text=True, timeout=660)
        assert run.returncode == 0 and "Completed" in run.stdout, run.stdout + run.stderr
        info = json.loads((tmp_path / "artifacts" / "registry.json").read_text())
        assert info["registered"] and info["alias"] == "champion" and info["version"] == 1
        run = subprocess.run([prefect, "deployment", "run", "cgankd-promote/cgankd-promote", "-p", "margin=0.0",
                              "--watch", "--watch-timeout", "300"], env=env, capture_output=True, text=True,
                             timeout=360)
        assert run.returncode == 0 and "Completed" in run.stdout, run.stdout + run.stderr
        mv = MlflowClient().get_model_version("cgankd-objects", "1")
        assert mv.tags["promotion"] == "is the champion already" or "first version" in mv.tags["promotion"]
    finally:
        if runner is not None:
            stop(runner)
        stop(server)
    assert server.poll() is not None
