"""The MLflow tracking server (a real `mlflow server`) stops in the middle of a pipeline run: the
run goes on, its outputs on disk are those of an untracked run, it says so in one line, register
stops with one line and moves no alias; with the server back, `cgankd tracking-replay` logs what
was kept and `cgankd register` registers."""

from __future__ import annotations

import os
import subprocess
import threading

import httpx
import pytest
import yaml
from conftest import shrunk
from kit import files, same
from kit.live_servers import mlflow_server, stop
from kit.shim import shim

from cgankd.serve.process import free_port


@pytest.mark.slow
def test_the_server_going_away_mid_run_loses_nothing(tmp_path, untracked_run):
    from mlflow.tracking import MlflowClient

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(shrunk(tmp_path / "artifacts").to_dict(), sort_keys=False))
    ref = untracked_run("classification")  # the same params, tracking off

    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = mlflow_server(tmp_path / "db", port)
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    run = subprocess.Popen([str(shim()), "run", "-p", str(params)], cwd=tmp_path, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []

    def read() -> None:
        for line in run.stdout:
            lines.append(line)
            if line.startswith("train-gan [") and server.poll() is None:
                stop(server)  # the GAN is training: the tracking server goes away

    reader = threading.Thread(target=read)
    reader.start()
    run.wait(timeout=900)
    reader.join()
    out = "".join(lines)
    assert server.poll() is not None, "the server was never stopped"
    assert run.returncode == 2, out[-3000:]
    notices = [x for x in lines if x.startswith("cgankd: tracking:")]
    assert len(notices) == 1 and "tracking-replay" in notices[0], notices
    assert lines[-1].startswith("cgankd: error: register") and "no alias moved" in lines[-1], lines[-1]
    art = tmp_path / "artifacts"
    backlog = art / "tracking-backlog.jsonl"
    assert backlog.is_file()
    produced = files(art) - {"tracking-backlog.jsonl", "registry.json"}
    assert produced == files(ref) - {"registry.json"}  # every stage ran; register wrote nothing
    assert not [f for f in produced if not same(art / f, ref / f)]

    server = mlflow_server(tmp_path / "db", port)  # back, on the same store
    try:
        replay = subprocess.run([str(shim()), "tracking-replay", "-p", str(params)], cwd=tmp_path,
                                env=env, capture_output=True, text=True)
        assert replay.returncode == 0, replay.stderr[-2000:]
        assert not backlog.exists() and list(art.glob("tracking-backlog.replayed-*.jsonl"))
        client = MlflowClient(uri)
        exp = client.get_experiment_by_name("cgankd")
        runs = client.search_runs([exp.experiment_id], max_results=200)
        (parent,) = [r for r in runs if r.data.tags.get("cgankd.kind") == "pipeline"]
        children = {r.data.tags.get("cgankd.stage"): r for r in runs
                    if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
        assert set(children) >= {"prepare", "train-teacher", "train-gan", "make-fakes", "train-student[cgankd]",
                                 "evaluate"}
        assert children["train-student[cgankd]"].data.metrics  # logged after the outage, by the replay
        assert children["evaluate"].info.status == "FINISHED"
        assert "cgankd_test_acc" in parent.data.metrics  # the parent's headline too
        assert children["register"].info.status == "FAILED"
        reg = subprocess.run([str(shim()), "register", "-p", str(params)], cwd=tmp_path, env=env,
                             capture_output=True, text=True)
        assert reg.returncode == 0, reg.stderr[-2000:]
        champ = client.get_model_version_by_alias("cgankd-objects", "champion")
        assert httpx.get(f"{uri}/health").status_code == 200 and champ.version == "1"
    finally:
        stop(server)


def test_a_forged_backlog_uploads_nothing_outside_and_touches_no_foreign_run(tmp_path):
    """A hand-written backlog, as the review wrote one: an artifact outside the out_dir, and calls
    that end and re-tag another run. Replay refuses both and logs the honest calls."""
    import json

    from mlflow.tracking import MlflowClient

    from cgankd.ops.backlog import OWNER_TAG, replay

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("cgankd")
    victim = client.create_run(exp, run_name="someone else's").info.run_id
    out = tmp_path / "artifacts"
    out.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours\n")
    mine = out / "plot.csv"
    mine.write_text("x\n1\n")
    backlog = out / "tracking-backlog.jsonl"
    new = {"key": "k1", "name": "train-gan", "experiment": "cgankd", "parent": None, "run_id": None}
    foreign = {"key": "k2", "name": "x", "experiment": "cgankd", "parent": None, "run_id": victim}
    lines = [{"run": new, "op": "tags", "tags": {"a": "b"}},
             {"run": new, "op": "artifact", "path": str(secret), "folder": None},
             {"run": new, "op": "artifact", "path": str(out / ".." / "secret.txt"), "folder": None},
             {"run": new, "op": "artifact", "path": str(mine), "folder": None},
             {"run": foreign, "op": "tags", "tags": {"owned": "yes"}},
             {"run": foreign, "op": "end", "status": "FAILED"}]
    backlog.write_text("".join(json.dumps(x) + "\n" for x in lines))
    counts = replay(uri, backlog)
    assert counts["refused"] == 4 and counts["runs_created"] == 1
    v = client.get_run(victim)
    assert v.info.status == "RUNNING" and "owned" not in v.data.tags
    created = [r for r in client.search_runs([exp]) if r.info.run_id != victim][0]
    assert [a.path for a in client.list_artifacts(created.info.run_id)] == ["plot.csv"]
    # a run cgankd started carries its backlog's path and may be replayed into
    own = client.create_run(exp, run_name="mine", tags={OWNER_TAG: str(backlog.resolve())}).info.run_id
    backlog.write_text(json.dumps({"run": {**foreign, "run_id": own}, "op": "end", "status": "FINISHED"}) + "\n")
    assert replay(uri, backlog)["refused"] == 0 and client.get_run(own).info.status == "FINISHED"


def test_printed_uris_carry_no_password(capsys, tmp_path):
    """A tracking URI with user:password@ is shown with the password replaced, in cgankd's messages and
    in the server errors they quote."""
    from cgankd.base.redact import redact
    from cgankd.ops.backlog import went_offline

    uri = "http://alice:s3cret-pw@tracking.example:5000"
    assert redact(f"{uri} refuses; postgresql://bob:pw2@db/x and sqlite:///mlflow.db") == \
        "http://alice:***@tracking.example:5000 refuses; postgresql://bob:***@db/x and sqlite:///mlflow.db"
    went_offline(uri, "logging", ConnectionError(f"HTTPConnectionPool for url {uri}/api"), tmp_path / "b.jsonl")
    err = capsys.readouterr().err
    assert "s3cret-pw" not in err and "alice:***@tracking.example" in err
