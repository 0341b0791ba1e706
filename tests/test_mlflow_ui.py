"""What the MLflow UI shows after a pipeline run, checked on a real ``mlflow server`` over the
pipeline's own store: the experiment opens on its training runs (not MLflow 3's GenAI overview),
the parent run is named after what ran and carries the headline metrics, and the children's
pictures are image artifacts. Where Debian's Chromium is installed, a headless browser renders
the runs page; ``CGANKD_UI_SCREENSHOT=<png>`` keeps its screenshot (the README's picture)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from conftest import shrunk
from kit.live_servers import mlflow_server, stop

from cgankd.cli import main
from cgankd.ops import mlflow_ui
from cgankd.pipeline.runner import run_pipeline
from cgankd.serve.process import free_port

PNG = b"\x89PNG\r\n\x1a\n"
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A shrunken pipeline logged to a sqlite store (artifacts beside it), then ``mlflow server``
    on that store; yields its base URL."""
    work = tmp_path_factory.mktemp("ui")
    db = work / "mlflow.db"
    old = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "CGANKD_PARENT_RUN_ID")}
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{db}"
    os.environ.pop("CGANKD_PARENT_RUN_ID", None)
    cwd = os.getcwd()
    os.chdir(work)  # the experiment's artifact root (./mlruns) lands in the work folder
    try:
        run_pipeline(shrunk(work / "artifacts"))
    finally:
        os.chdir(cwd)
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    port = free_port()
    proc = mlflow_server(db, port)
    url = f"http://127.0.0.1:{port}"
    try:
        yield url
    finally:
        stop(proc)


def api(url: str, path: str, **body) -> dict:
    r = httpx.post(f"{url}/api/2.0/mlflow/{path}", json=body, timeout=30) if body else \
        httpx.get(f"{url}/api/2.0/mlflow/{path}", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def experiment(url: str) -> dict:
    return api(url, "experiments/get-by-name?experiment_name=cgankd")["experiment"]


def runs(url: str, where: str) -> list[dict]:
    return api(url, "runs/search", experiment_ids=[experiment(url)["experiment_id"]], filter=where,
               max_results=100).get("runs", [])


def as_dict(items: list[dict]) -> dict:
    return {x["key"]: x["value"] for x in items}


@pytest.mark.slow
def test_the_experiment_opens_on_training_runs_and_parents_carry_the_headline(server):
    tags = as_dict(experiment(server).get("tags", []))
    assert tags.get("mlflow.experimentKind") == "custom_model_development"  # not the GenAI overview
    view = json.loads(tags[mlflow_ui.VIEW_TAG])  # the runs table's headline columns
    assert view["selectedColumns"][:4] == ["metrics.`teacher_test_acc`", "metrics.`nokd_test_acc`",
                                           "metrics.`cgankd_test_acc`", "metrics.`cgankd_minus_nokd_test_acc`"]

    (parent,) = runs(server, "tags.`cgankd.kind` = 'pipeline'")
    assert parent["info"]["run_name"] == "objects/classification seed0"
    ptags, metrics = as_dict(parent["data"]["tags"]), as_dict(parent["data"]["metrics"])
    assert {ptags[k] for k in ("cgankd.source", "cgankd.task", "cgankd.profile", "cgankd.methods")} == {
        "objects", "classification", "default", "nokd,cgankd"}
    assert ptags["mlflow.source.git.commit"] and ptags["cgankd.selected"] in ("nokd", "cgankd")
    for key in ("teacher_test_acc", "nokd_test_acc", "cgankd_test_acc", "nokd_val_acc", "cgankd_val_acc"):
        assert 0 <= metrics[key] <= 100, key
    assert metrics["cgankd_minus_nokd_test_acc"] == pytest.approx(metrics["cgankd_test_acc"] - metrics["nokd_test_acc"])


@pytest.mark.slow
def test_each_child_shows_its_pictures_as_image_artifacts(server):
    (parent,) = runs(server, "tags.`cgankd.kind` = 'pipeline'")
    children = {as_dict(r["data"]["tags"])["cgankd.stage"]: r["info"]["run_id"]
                for r in runs(server, f"tags.mlflow.parentRunId = '{parent['info']['run_id']}'")}
    wanted = {"prepare": "plots", "train-gan": "samples", "make-fakes": "plots", "evaluate": "plots"}
    for stage, folder in wanted.items():
        files = api(server, f"artifacts/list?run_id={children[stage]}&path={folder}").get("files", [])
        pngs = [f["path"] for f in files if f["path"].endswith(".png")]
        assert pngs, f"{stage} logged no picture under {folder}/"
        r = httpx.get(f"{server}/get-artifact", params={"run_uuid": children[stage], "path": pngs[0]}, timeout=30)
        assert r.status_code == 200 and r.content.startswith(PNG), (stage, pngs[0])
    names = {f["path"] for f in api(server, f"artifacts/list?run_id={children['train-gan']}&path=plots")["files"]}
    assert {"plots/samples.png", "plots/quality.png"} <= names  # the final grid and the label-score curve
    names = {f["path"] for f in api(server, f"artifacts/list?run_id={children['make-fakes']}&path=plots")["files"]}
    assert "plots/fakes_score_hist.png" in names  # the filter's histogram


def test_cgankd_ui_prints_the_runs_table_of_a_tracking_server(server, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    assert main(["ui"]) == 0
    exp_id = experiment(server)["experiment_id"]
    assert capsys.readouterr().out.strip().endswith(mlflow_ui.link(server, exp_id))
    assert main(["ui", "-S", "tracking.experiment=nope"]) == 2
    assert "tracking.experiment=nope" in capsys.readouterr().err


def test_the_view_keeps_its_columns_and_adds_each_parents_headline():
    cols = mlflow_ui.columns(["teacher_test_acc", "nokd_val_acc", "nokd_test_acc", "cgankd_minus_nokd_test_acc"], [])
    assert cols == ["metrics.`teacher_test_acc`", "metrics.`nokd_test_acc`", "metrics.`cgankd_minus_nokd_test_acc`",
                    *mlflow_ui.TAGS]
    more = mlflow_ui.columns(["teacher_test_mae", "resnet8-convnet_s/cgankd_blkd_test_mae"], cols)
    assert more[:3] == cols[:3] and more[3:5] == ["metrics.`teacher_test_mae`",
                                                  "metrics.`resnet8-convnet_s/cgankd_blkd_test_mae`"]
    assert more.count(mlflow_ui.TAGS[0]) == 1
    assert len(mlflow_ui.columns([f"m{i}_test_acc" for i in range(99)], [])) == mlflow_ui.MAX_COLUMNS + 2


@pytest.mark.slow
@pytest.mark.skipif(BROWSER is None, reason="no Chromium installed (Debian: apt-get install chromium)")
def test_a_browser_opens_the_runs_table_with_the_headline_columns(server, tmp_path):
    page = mlflow_ui.link(server, experiment(server)["experiment_id"])
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1900,520",
             "--virtual-time-budget=30000", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([BROWSER, *flags, "--dump-dom", page], capture_output=True, text=True, timeout=180).stdout
    assert "Token Usage" not in dom  # not the GenAI overview
    assert "objects/classification seed0" in dom  # the runs table, the parent by its name ...
    for col in ("teacher_test_acc", "nokd_test_acc", "cgankd_test_acc", "cgankd_minus_nokd_test_acc"):
        assert col in dom  # ... and its headline as columns
    shot = Path(os.environ.get("CGANKD_UI_SCREENSHOT") or tmp_path / "runs.png")
    subprocess.run([BROWSER, *flags, f"--screenshot={shot}", page], capture_output=True, timeout=180)
    assert shot.read_bytes().startswith(PNG)


@pytest.mark.parametrize("host, warned", [("0.0.0.0", True), ("127.0.0.1", False)])
def test_cgankd_ui_on_a_wide_address_warns(tmp_path, capsys, monkeypatch, host, warned):
    """`cgankd ui --host 0.0.0.0` serves a writable registry with no authentication: said before it starts."""
    import mlflow

    db = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(db)
    mlflow.create_experiment("cgankd")
    started = []
    monkeypatch.setattr(mlflow_ui.subprocess, "call", lambda cmd, env: started.append(cmd) or 0)
    assert mlflow_ui.serve(db, "cgankd", host, free_port()) == 0 and started
    err = capsys.readouterr().err
    assert ("without authentication" in err and "lets them change it" in err) == warned, err
