"""The Prefect flows call the same stage and sweep functions (shrunken config); flows.deploy serves what
prefect.yaml declares; every flow script answers --help without starting a run."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from conftest import ROOT, shrunk
from kit import dvc_repo, python_forked, sh

from cgankd.base.errors import CgankdError
from cgankd.ops import dvc_remote


@pytest.mark.slow
def test_the_flows_call_the_stage_and_sweep_functions_and_pass_their_results_on(tmp_path, monkeypatch, capfd):
    """Wiring, not numbers (the stage, compare and ablation tests check those): the pipeline flow runs
    every stage as a task under one parent run, retries a failure of the machine (the GAN resumes from
    its checkpoint), publishes the report and headline, and a second run with nothing changed runs no
    stage; the ablation flow reuses that run's upstream outputs; the compare flow returns
    run_compare's rows and writes its table."""
    from prefect.testing.utilities import prefect_test_harness

    from flows.pipeline import pipeline

    repo = dvc_repo(tmp_path / "repo", shrunk(Path("artifacts")).to_dict())  # a DVC checkout: the run is pushed
    monkeypatch.chdir(repo)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # the user's DVC remote folder
    dvc_remote.configure(repo)
    params, art = repo / "params.yaml", repo / "artifacts"
    for key, value in (("FAILPOINT", "half"), ("FAILPOINT_STAGE", "train-gan"), ("FAILPOINT_MODE", "raise"),
                       ("FAILPOINT_ONCE", str(tmp_path / "failed-once"))):  # an OSError half-way through the GAN
        monkeypatch.setenv(f"CGANKD_{key}", value)
    with prefect_test_harness(server_startup_timeout=120):
        with pytest.raises(CgankdError, match="cannot be pushed as the checkout's dvc.lock: it has -S overrides"):
            pipeline(params=str(params), overrides=["filter.rho=0.5"], push=True)  # refused before any stage
        assert not art.exists()
        run_id = pipeline(params=str(params), retry_delay_s=0)
        assert (tmp_path / "failed-once").exists() and "gan: resumed from its checkpoint" in capfd.readouterr().err
        again = pipeline(params=str(params), retry_delay_s=0, push=True)  # nothing changed: cached, then pushed
        assert sh("dvc", "status", "--json", cwd=repo).stdout.strip() in ("{}", "")  # dvc.lock: these outputs
        assert sh("dvc", "status", "--cloud", "--json", cwd=repo).stdout.strip() in ("{}", "")  # all pushed
        from flows.ablation import ablation

        seed_dir = tmp_path / "abl" / "classification" / "seed0"  # the pipeline's run is seed 0's upstream
        shutil.copytree(art, seed_dir)
        abl = ablation(params=str(params), seeds=[0], variants=["none"], work=str(tmp_path / "abl"), reuse=True)
        from flows.compare import compare

        cmp = compare(params=str(params), overrides=["task=regression"], pairs=["resnet8:convnet_xs"],
                      methods=["nokd", "blkd", "fitnet"], seeds=[0], work=str(tmp_path / "cmp"))
        from prefect import get_client

        async def read() -> tuple[dict, list, list, list]:
            async with get_client() as client:
                return ({f.id: f.name for f in await client.read_flows()}, await client.read_flow_runs(),
                        await client.read_task_runs(), await client.read_artifacts())

        import asyncio

        flows, flow_runs, task_runs, artifacts = asyncio.run(read())
    refused, first, second = (f.id for f in sorted((f for f in flow_runs if flows[f.flow_id] == "cgankd-pipeline"),
                                                   key=lambda f: f.start_time))
    assert not [t for t in task_runs if t.flow_run_id == refused]
    tasks = [t.name for t in task_runs if t.flow_run_id == first]
    assert [t.state.name for t in task_runs if t.flow_run_id == second] == ["Cached"] * len(tasks)
    assert [t.run_count for t in task_runs if t.flow_run_id == first and t.name.startswith("train-gan")] == [2]
    published = {a.key: a for a in artifacts}
    assert published["cgankd-report"].type == "markdown" and published["cgankd-report"].data.startswith("#")
    assert published["cgankd-headline"].type == "table" and "test_acc.cgankd" in str(published["cgankd-headline"].data)
    assert again is not None and again != run_id
    metrics = json.loads((art / "metrics.json").read_text())
    assert {"nokd_test_acc", "cgankd_test_acc"} <= set(metrics)
    stages = ["prepare", "train-teacher", "train-extractor", "train-gan", "make-fakes", "train-student",
              "train-student", "export", "evaluate", "register"]
    assert sorted(t.rsplit("-", 1)[0] for t in tasks) == sorted(stages), tasks  # one task per stage
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    exp = client.get_experiment_by_name("cgankd")
    children = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")
    assert sorted(r.info.status for r in children) == ["FAILED"] + ["FINISHED"] * 10  # the GAN's first try
    # the ablation reused the upstream stages and NOKD: only the variant's fakes and student are new
    assert [r["variant"] for r in abl["rows"]] == ["none"] and abl["rows"][0]["fakes"]["acceptance_rate"] == 1.0
    assert abl["baselines"][0]["nokd"] == json.loads((art / "metrics" / "student_nokd.json").read_text())
    assert (tmp_path / "abl" / "ablation_objects.md").is_file()
    assert [r["method"] for r in cmp["rows"]] == ["nokd", "blkd", "fitnet"]  # the regression analogues
    assert all(r["metrics"]["test_mae"] > 0 for r in cmp["rows"])
    assert "| resnet8 -> convnet_xs" in (tmp_path / "cmp" / "compare_rc.md").read_text()


def test_flows_deploy_serves_what_prefect_yaml_declares(tmp_path):
    from flows.deploy import build_deployments

    deps = {d.name: d for d in build_deployments(ROOT / "prefect.yaml", cron="15 2 * * 1",
                                                  overrides=["filter.rho=0.8"])}
    assert sorted(deps) == ["cgankd-compare", "cgankd-nightly", "cgankd-promote"]
    nightly = deps["cgankd-nightly"]
    assert nightly.schedules[0].schedule.cron == "15 2 * * 1" and nightly.concurrency_limit == 1
    assert nightly.parameters == {"params": "params.yaml", "overrides": ["filter.rho=0.8"]}
    assert deps["cgankd-promote"].schedules == [] and deps["cgankd-promote"].tags == ["cgankd", "promotion"]
    (tmp_path / "prefect.yaml").write_text("deployments:\n  - name: x\n")
    with pytest.raises(ValueError, match="needs a name and an entrypoint"):
        build_deployments(tmp_path / "prefect.yaml")
    with pytest.raises(ValueError, match="no such prefect.yaml"):
        build_deployments(tmp_path / "none.yaml")
    import subprocess

    bad = subprocess.run([sys.executable, "-m", "flows.deploy", "--prefect-file", str(tmp_path / "none.yaml")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        f"deploy.py: error: {tmp_path / 'none.yaml'}: no such prefect.yaml (pass --prefect-file; the cgankd "
        "repository has one at its root)"], bad.stderr


@pytest.mark.parametrize("script", ["pipeline", "ablation", "compare", "promote", "deploy"])
def test_a_flow_script_answers_help_and_bad_arguments_without_starting_a_run(script, tmp_path):
    path, cwd = str(ROOT / "flows" / f"{script}.py"), tmp_path / "cwd"
    cwd.mkdir()
    # `python flows/<script>.py ARGS`, forked after torch's imports (kit.python_forked): one stream out
    run = "import runpy, sys\nsys.argv = sys.argv[1:]\nrunpy.run_path(sys.argv[0], run_name='__main__')\n"
    ok = python_forked(run, path, "--help", env=dict(os.environ), cwd=cwd, timeout=120)
    assert ok.returncode == 0 and ok.stdout.startswith("usage:"), ok.stdout[-2000:]
    bad = python_forked(run, path, "--no-such-flag", env=dict(os.environ), cwd=cwd, timeout=120)
    assert bad.returncode == 2 and "unrecognized arguments: --no-such-flag" in bad.stdout, bad.stdout[-2000:]
    assert list(cwd.iterdir()) == []  # no run started: no artifacts, no mlflow.db
