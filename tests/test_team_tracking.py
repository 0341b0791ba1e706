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
from kit import group_argv
from kit.shim import shim

from cgankd.base.errors import CgankdError
from cgankd.ops.team_stack import (
    AUTH_CACHE_S,
    USER,
    Postgres,
    client_env,
    mlflow_server,
    pg_bindir,
    prefect_server,
    stop,
)
from cgankd.serve.process import bearer, free_port, start_server, stop_server

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
        check_postgres_is_locked(pg)
        procs.append(mlflow_server(pg, tmp_path / "mlartifacts", port := free_port(), tmp_path / "mlflow.log",
                                   workers=2))
        uri = f"http://127.0.0.1:{port}"
        # a checked password is trusted for a while (each check is a scrypt hash: the server was CPU-bound)
        assert f"auth_cache_ttl_seconds = {AUTH_CACHE_S}\n" in (pg.secrets.folder / "mlflow-auth.ini").read_text()
        pipeline = client_env(pg.secrets, port, None)  # the pipelines authenticate, as the pipeline account
        assert pipeline["MLFLOW_TRACKING_USERNAME"] == "cgankd-pipeline"  # the admin's password stays in secrets/
        for key, value in pipeline.items():
            monkeypatch.setenv(key, value)
        assert httpx.get(f"{uri}/api/2.0/mlflow/experiments/search?max_results=1").status_code == 401
        wrong = httpx.get(f"{uri}/api/2.0/mlflow/experiments/search?max_results=1", auth=("cgankd-admin", "guess"))
        assert wrong.status_code == 401
        runs = []
        for i, name in enumerate("ab"):  # two pipelines at the same time, different folders, one server
            params = tmp_path / f"{name}.yaml"
            # NOKD only: what is tested is the team stack, not the GAN (6 stages, not 10)
            cfg = shrunk(tmp_path / name, f"seed={i}", "student.methods=[nokd]")
            params.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
            runs.append(subprocess.Popen([str(shim()), "run", "-p", str(params)], stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, text=True, env=dict(os.environ)))
            time.sleep(1)
        for proc in runs:
            out, _ = proc.communicate(timeout=900)
            assert proc.returncode == 0, out[-3000:]
            assert "cgankd: tracking:" not in out, out[-3000:]  # logged live: no run went offline (a race lost)
        # with the admin's password trusted by now (the auth cache), a wrong one is still refused
        assert httpx.get(f"{uri}/api/2.0/mlflow/experiments/search?max_results=1",
                         auth=("cgankd-admin", "guess")).status_code == 401

        # the server runs no MLflow job runner (cgankd runs no MLflow jobs; 8 processes, ~1.9 GB)
        server = group_argv(procs[0].pid)
        assert any(Path(a).name == "mlflow" for argv in server for a in argv), server
        assert not [argv for argv in server if any("huey" in a or "job_runner" in a for a in argv)], server

        from mlflow.tracking import MlflowClient

        client = MlflowClient(uri)
        exp = client.get_experiment_by_name("cgankd")
        all_runs = client.search_runs([exp.experiment_id], max_results=500)
        parents = [r for r in all_runs if r.data.tags.get("cgankd.kind") == "pipeline"]
        assert sorted(r.info.run_name for r in parents) == ["objects/classification seed0",
                                                           "objects/classification seed1"], every_run(client)
        for parent in parents:
            children = [r for r in all_runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
            assert len(children) == 6 and all(r.info.status == "FINISHED" for r in children)
            assert "nokd_test_acc" in parent.data.metrics
        # artifacts went through the server to its artifact store, not to a local mlruns folder
        assert any((tmp_path / "mlartifacts").rglob("*.png")) and not (tmp_path / "mlruns").exists()
        versions = client.search_model_versions(f"name = '{NAME}'")
        assert len(versions) == 2
        champion = client.get_model_version_by_alias(NAME, "champion")

        token = "team-operator-0123456789abcdef0123456789"
        reader = client_env(pg.secrets, port, None, "serve")  # cgankd serve reads with a read-only account
        for key, value in reader.items():
            monkeypatch.setenv(key, value)
        other = next(v.version for v in versions if v.version != champion.version)
        move = httpx.post(f"{uri}/api/2.0/mlflow/registered-models/alias", json={
            "name": NAME, "alias": "champion", "version": other},
            auth=(reader["MLFLOW_TRACKING_USERNAME"], reader["MLFLOW_TRACKING_PASSWORD"]))
        assert move.status_code == 403, move.text  # it can change nothing of the team's
        proc, url = start_server(f"models:/{NAME}@champion", "--providers", "cpu", token=token)
        try:
            meta = httpx.get(f"{url}/metadata").json()
            assert meta["version"] == int(champion.version)
            images = np.zeros((2, 3, 16, 16), np.uint8)
            buf = io.BytesIO()
            np.save(buf, images)
            r = httpx.post(f"{url}/predict", content=buf.getvalue())
            assert r.status_code == 200 and len(r.json()["predictions"]) == 2
            promoted = subprocess.run([str(shim()), "promote", "--version", str(other), "--force",
                                       "-S", f"out_dir={tmp_path / 'a'}"], capture_output=True, text=True,
                                      env={**os.environ, **pipeline})
            assert promoted.returncode == 0, promoted.stderr[-2000:]
            assert client.get_model_version_by_alias(NAME, "champion").version == other
            reloaded = httpx.post(f"{url}/reload", headers=bearer(token))
            assert reloaded.json()["version"] == int(other)
        finally:
            stop_server(proc)

        # the Prefect server on the same PostgreSQL records a flow run started against it
        procs.append(prefect_server(pg, tmp_path / "prefect", pport := free_port(), tmp_path / "prefect.log"))
        api = f"http://127.0.0.1:{pport}/api"
        creds = client_env(pg.secrets, port, pport)
        code = ("from prefect import flow\n@flow(name='cgankd-team-check')\ndef f():\n    return 1\nprint(f())")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                             env={**os.environ, **creds})
        assert out.returncode == 0, out.stderr[-2000:]
        # no credentials, or a web page of another origin: refused (no CORS grant for it either)
        assert httpx.post(f"{api}/flow_runs/filter", json={}).status_code == 401
        evil = httpx.options(f"{api}/deployments/filter", headers={
            "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
        assert evil.headers.get("access-control-allow-origin") not in ("*", "http://evil.example")
        user, password = creds["PREFECT_API_AUTH_STRING"].split(":", 1)
        flows = httpx.post(f"{api}/flow_runs/filter", json={}, auth=(user, password)).json()
        assert [r["state_type"] for r in flows] == ["COMPLETED"]
        tables = subprocess.run([str(pg_bindir() / "psql"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", USER,
                                 "-d", "prefect", "-tAc", "select count(*) from flow_run"], capture_output=True,
                                text=True, env={**os.environ, "PGPASSWORD": pg.secrets.get(f"postgres-{USER}")})
        assert tables.stdout.strip() == "1", tables.stderr  # stored in PostgreSQL, not a sqlite file
    finally:
        for p in reversed(procs):
            stop(p)
        pg.stop()
        shutil.rmtree(pg_root, ignore_errors=True)


def psql(pg: Postgres, user: str, sql: str, password: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    if password is not None:
        env["PGPASSWORD"] = password
    return subprocess.run([str(pg_bindir() / "psql"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", user,
                           "-d", "postgres", "-w", "-tAc", sql], capture_output=True, text=True, env=env, timeout=60)


def check_postgres_is_locked(pg: Postgres) -> None:
    """As the review tried it: no password-less login (any role), a wrong password refused, the
    application role no superuser and unable to run a program on the server."""
    for user in (USER, "cgankd_admin", "postgres"):
        res = psql(pg, user, "select 1", None)
        assert res.returncode != 0 and "password" in res.stderr, (user, res.stderr)
    assert psql(pg, USER, "select 1", "guess").returncode != 0
    good = pg.secrets.get(f"postgres-{USER}")
    assert psql(pg, USER, "select rolsuper from pg_roles where rolname = current_user", good).stdout.strip() == "f"
    res = psql(pg, USER, "create temp table t(x text); copy t from program 'id'", good)
    assert res.returncode != 0 and "must be superuser" in res.stderr, res.stderr
    secret = pg.secrets.folder / f"postgres-{USER}"
    assert (secret.stat().st_mode & 0o777) == 0o600 and (pg.secrets.folder.stat().st_mode & 0o777) == 0o700


def test_a_tracking_uri_that_refuses_connections_fails_in_one_line(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(shrunk(tmp_path / "out").to_dict(), sort_keys=False))
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"}
    res = subprocess.run([str(shim()), "run", "-p", str(params)], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 2
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("cgankd: error: MLFLOW_TRACKING_URI") and "refuses connections" in last, last


def every_run(client) -> str:
    """Every run of every experiment, deleted ones included, one per line (where did a parent go?)."""
    lines = []
    for e in client.search_experiments(view_type=3):
        for r in client.search_runs([e.experiment_id], run_view_type=3, max_results=500):
            tags = r.data.tags
            lines.append(f"{r.info.run_id} exp={e.experiment_id} {r.info.run_name!r} {r.info.lifecycle_stage} "
                         f"{r.info.status} start={r.info.start_time} kind={tags.get('cgankd.kind')} "
                         f"parent={tags.get('mlflow.parentRunId')} tags={sorted(tags)}")
    return "\n".join(lines)




def test_no_password_reaches_a_command_line_or_the_server(tmp_path, monkeypatch):
    """psql gets its SQL on standard input, and a role's password goes as its SCRAM verifier: neither
    the process list nor PostgreSQL (its statement log included) sees the password. That PostgreSQL
    accepts the verifier is the stack test above: the application role logs in with the password."""
    import cgankd.ops.team_stack as stack
    from cgankd.ops.scram import password_sql

    calls = []
    monkeypatch.setattr(stack.subprocess, "run", lambda cmd, **kw: calls.append((cmd, kw.get("input"), kw["env"]))
                        or subprocess.CompletedProcess(cmd, 0, "1\n", ""))
    pg = Postgres(tmp_path / "data", 5999)
    pw = pg.secrets.get("postgres-" + USER)
    pg._admin_sql(f"CREATE ROLE {USER} LOGIN {password_sql(pw)}")
    (cmd, sql, env), = calls
    assert pw not in " ".join(cmd) and "CREATE ROLE" not in " ".join(cmd)
    assert "CREATE ROLE" in sql and pw not in sql and "PASSWORD 'SCRAM-SHA-256$4096:" in sql
    assert env["PGPASSWORD"] == pg.secrets.get("postgres-cgankd_admin") and env["PGPASSWORD"] not in " ".join(cmd)
