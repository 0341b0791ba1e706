"""Team tracking on real servers the test starts: PostgreSQL (the system's server programs), an
MLflow tracking server with PostgreSQL as its backend store and proxied artifacts, and a Prefect
server on the same PostgreSQL. Two shrunken pipelines started together log to that server, both
register, ``cgankd promote`` and ``cgankd serve`` use its registry, and a Prefect flow run is
recorded by the Prefect server."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from conftest import shrunk

from cgankd.errors import CgankdError
from cgankd.serve.process import bearer, free_port, start_server, stop_server
from cgankd.team_stack import Postgres, mlflow_server, pg_bindir, prefect_server, stop

BIN = os.path.join(os.path.dirname(sys.executable), "cgankd")
NAME = "cgankd-objects"

try:
    pg_bindir()
    HAVE_PG = True
except CgankdError:
    HAVE_PG = False


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_PG, reason="no PostgreSQL server programs (apt-get install postgresql)")
def test_pipelines_promote_serve_and_flows_on_a_postgresql_backed_stack(tmp_path, monkeypatch):
    # as root PostgreSQL runs as `postgres`, which cannot enter pytest's private tmp folders
    pg_root = Path(tempfile.mkdtemp(prefix="cgankd-pg-"))
    pg_root.chmod(0o755)
    pg = Postgres(pg_root / "data", free_port()).start()
    procs = []
    try:
        procs.append(mlflow_server(pg, tmp_path / "mlartifacts", port := free_port(), tmp_path / "mlflow.log",
                                   workers=2))
        uri = f"http://127.0.0.1:{port}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        runs = []
        for i, name in enumerate("ab"):  # two pipelines at the same time, different folders, one server
            params = tmp_path / f"{name}.yaml"
            params.write_text(yaml.safe_dump(shrunk(tmp_path / name, f"seed={i}").to_dict(), sort_keys=False))
            runs.append(subprocess.Popen([BIN, "run", "-p", str(params)], stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, text=True, env=dict(os.environ)))
            time.sleep(1)
        for proc in runs:
            out, _ = proc.communicate(timeout=900)
            assert proc.returncode == 0, out[-3000:]

        from mlflow.tracking import MlflowClient

        client = MlflowClient(uri)
        exp = client.get_experiment_by_name("cgankd")
        all_runs = client.search_runs([exp.experiment_id], max_results=500)
        parents = [r for r in all_runs if r.data.tags.get("cgankd.kind") == "pipeline"]
        assert sorted(r.info.run_name for r in parents) == ["objects/classification seed0",
                                                           "objects/classification seed1"]
        for parent in parents:
            children = [r for r in all_runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
            assert len(children) == 10 and all(r.info.status == "FINISHED" for r in children)
            assert "cgankd_test_acc" in parent.data.metrics
        # artifacts went through the server to its artifact store, not to a local mlruns folder
        assert any((tmp_path / "mlartifacts").rglob("*.png")) and not (tmp_path / "mlruns").exists()
        versions = client.search_model_versions(f"name = '{NAME}'")
        assert len(versions) == 2
        champion = client.get_model_version_by_alias(NAME, "champion")

        proc, url = start_server(f"models:/{NAME}@champion", "--providers", "cpu", token="team-operator-0123456789")
        try:
            meta = httpx.get(f"{url}/metadata").json()
            assert meta["version"] == int(champion.version)
            images = np.zeros((2, 3, 16, 16), np.uint8)
            buf = io.BytesIO()
            np.save(buf, images)
            r = httpx.post(f"{url}/predict", content=buf.getvalue())
            assert r.status_code == 200 and len(r.json()["predictions"]) == 2
            other = next(v.version for v in versions if v.version != champion.version)
            promoted = subprocess.run([BIN, "promote", "--version", str(other), "--force",
                                       "-S", f"out_dir={tmp_path / 'a'}"], capture_output=True, text=True)
            assert promoted.returncode == 0, promoted.stderr[-2000:]
            assert client.get_model_version_by_alias(NAME, "champion").version == other
            reloaded = httpx.post(f"{url}/reload", headers=bearer("team-operator-0123456789"))
            assert reloaded.json()["version"] == int(other)
        finally:
            stop_server(proc)

        # the Prefect server on the same PostgreSQL records a flow run started against it
        procs.append(prefect_server(pg, tmp_path / "prefect", pport := free_port(), tmp_path / "prefect.log"))
        api = f"http://127.0.0.1:{pport}/api"
        code = ("from prefect import flow\n@flow(name='cgankd-team-check')\ndef f():\n    return 1\nprint(f())")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                             env={**os.environ, "PREFECT_API_URL": api})
        assert out.returncode == 0, out.stderr[-2000:]
        flows = httpx.post(f"{api}/flow_runs/filter", json={}).json()
        assert [r["state_type"] for r in flows] == ["COMPLETED"]
        tables = subprocess.run([str(pg_bindir() / "psql"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", "cgankd",
                                 "-d", "prefect", "-tAc", "select count(*) from flow_run"],
                                capture_output=True, text=True)
        assert tables.stdout.strip() == "1", tables.stderr  # stored in PostgreSQL, not a sqlite file
    finally:
        for p in reversed(procs):
            stop(p)
        pg.stop()
        shutil.rmtree(pg_root, ignore_errors=True)


def test_a_tracking_uri_that_refuses_connections_fails_in_one_line(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(shrunk(tmp_path / "out").to_dict(), sort_keys=False))
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"}
    res = subprocess.run([BIN, "run", "-p", str(params)], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 2
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("cgankd: error: MLFLOW_TRACKING_URI") and "refuses connections" in last, last
