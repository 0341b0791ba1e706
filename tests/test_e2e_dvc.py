"""End to end through `dvc repro` on the embedded data with a shrunken config, in a scratch repo."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import shrunk
from kit import RNG, dvc_repo, make_mnist, ran, sh, write_idx

from cgankd.ops import dvc_remote
from cgankd.ops.datasets import dvc_md5
from cgankd.ops.servers import stop
from cgankd.serve.process import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return dvc_repo(tmp_path_factory.mktemp("repo"), shrunk(Path("artifacts")).to_dict())


def check_registry_champion(repo: Path, db: Path) -> None:
    import mlflow
    import onnxruntime as ort
    import torch
    from mlflow.tracking import MlflowClient

    from cgankd.store import load_model

    mlflow.set_tracking_uri(f"sqlite:///{db}")
    name = "cgankd-objects"  # tracking.model_name null -> cgankd-<source>
    champ = MlflowClient().get_model_version_by_alias(name, "champion")
    local = mlflow.artifacts.download_artifacts(f"models:/{name}@champion", dst_path=str(repo / "dl"))
    sess = ort.InferenceSession(str(next(Path(local).rglob("*.onnx"))), providers=["CPUExecutionProvider"])
    model = load_model(repo / "artifacts" / "students" / champ.tags["method"] / "model.pt")
    x = torch.rand(5, 3, 16, 16)
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, model(x).detach().numpy(), atol=1e-4)
    out = mlflow.pyfunc.load_model(f"models:/{name}@champion").predict(x.numpy())  # answers like cgankd serve
    assert [r["index"] for r in out] == got.argmax(1).tolist() and len(out[0]["probabilities"]) == 10
    # the version's description is its model card (cgankd/ops/version_card.py), the PyTorch twin's too
    method, metrics = champ.tags["method"], json.loads((repo / "artifacts" / "metrics.json").read_text())
    assert champ.description.startswith(f"## {name}: the `{method}` student")
    assert f"| test acc | {metrics[f'{method}_test_acc']:.4g}%" in champ.description
    twin = MlflowClient().get_model_version(f"{name}-pytorch", champ.tags["pytorch_version"])
    assert twin.description.startswith(champ.description) and f"version {champ.version}" in twin.description


def test_repro_runs_every_stage_then_nothing_then_only_downstream_of_rho(repo, monkeypatch):
    db = repo / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.5")  # the training stages last seconds here
    first = sh(sys.executable, "-m", "cgankd", "repro", cwd=repo)
    stages = set(yaml.safe_load((repo / "dvc.yaml").read_text())["stages"])
    assert ran(first) == stages
    metrics = json.loads((repo / "artifacts" / "metrics.json").read_text())
    for key in ("nokd_test_acc", "cgankd_test_acc", "teacher_test_acc"):
        assert 0 <= metrics[key] <= 100
    shown = json.loads(sh("dvc", "metrics", "show", "--json", cwd=repo).stdout)[""]["data"]
    head = shown["artifacts/headline.json"]["data"]  # the one DVC metrics file: the headline
    assert list(shown) == ["artifacts/headline.json"]
    assert head["test_acc"] == {m: metrics[f"{m}_test_acc"] for m in ("cgankd", "nokd", "teacher")}
    assert head["test_acc_vs_nokd"]["cgankd"] == metrics["cgankd_minus_nokd_test_acc"]
    # the classification default subsamples (cDR-RS) within a draw budget: up to 16 per class
    fakes = np.load(repo / "artifacts" / "fakes" / "fakes.npz")
    n = len(fakes["fake_images"])
    assert n <= 160 and fakes["fake_images"].shape[1:] == (3, 16, 16) and fakes["fake_images"].dtype == np.uint8
    counts = json.loads((repo / "artifacts" / "fakes" / "counts.json").read_text())
    assert all(c["kept"] <= 16 and c["generated"] >= c["kept"] for c in counts.values())
    fk = json.loads((repo / "artifacts" / "metrics" / "fakes.json").read_text())
    assert 0 < fk["acceptance_rate"] < 1 and sum(c["generated"] for c in counts.values()) <= 4 * 160
    # quality in the extractor's feature space, before and after each step; real stats cached
    for step in ("raw", "subsampled", "filtered", "subsampled_filtered", "final"):
        assert f"quality_{step}_fid" in fk and f"quality_{step}_n" in fk
    assert 0 <= fk["quality_raw_fid"] and 0 <= fk["quality_raw_label_score"] <= 100
    assert fk["quality_raw_n"] == 100 and fk["quality_final_n"] == n
    assert len(list((repo / "artifacts" / "extractor").glob("real_stats_objects_*.npz"))) == 1
    assert (repo / "artifacts" / "plots" / "fakes_quality.png").is_file()

    # the ONNX champion from the registry runs in onnxruntime and agrees with PyTorch
    check_registry_champion(repo, db)

    second = sh("dvc", "repro", cwd=repo)
    assert ran(second) == set()
    sh("git", "add", "-A", cwd=repo)
    sh("git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "first", cwd=repo)
    # progress and tracking code computes no output: editing it leaves every stage up to date but
    # register, whose output is what it tells the registry
    for name, changed in (("base/progress.py", set()), ("ops/tracking.py", {"register"})):
        assert (repo / "cgankd" / name).is_file(), name
        with open(repo / "cgankd" / name, "a") as f:
            f.write("\n# an edit that changes no output\n")
        assert set(json.loads(sh("dvc", "status", "--json", cwd=repo).stdout or "{}")) == changed

    third = sh("dvc", "exp", "run", "-n", "exp-a", "-S", "filter.rho=0.7", cwd=repo)  # an experiment, in the workspace
    # make-fakes and the cgankd student re-run; later stages only where their inputs changed
    # (an identical metrics.json, e.g. two chance-level students, leaves register cached)
    downstream = {"make-fakes", "train-student-cgankd", "export", "evaluate", "register"}
    assert {"make-fakes", "train-student-cgankd"} <= ran(third) <= downstream
    # the headline against the committed run, and the experiments table kept to what changed
    mdiff = json.loads(sh("dvc", "metrics", "diff", "HEAD", "--all", "--json", cwd=repo).stdout)
    head_diff = mdiff["artifacts/headline.json"]
    assert {"test_acc.cgankd", "test_acc.nokd", "used_fakes.score"} <= set(head_diff)
    assert head_diff["test_acc.nokd"]["old"] == metrics["nokd_test_acc"]  # the committed side, from DVC's cache
    header = sh("dvc", "exp", "show", "--only-changed", "--csv", cwd=repo).stdout.splitlines()[0].split(",")
    assert "filter.rho" in header and len(header) <= 25, header
    # the figures are DVC plots: `dvc plots diff` shows the committed run's beside this one's
    diff = sh("dvc", "plots", "diff", "HEAD", "-o", str(repo / "plots_diff"), cwd=repo)
    assert "failed to load" not in diff.stdout + diff.stderr
    shown = {p.name for p in (repo / "plots_diff" / "static").glob("*.png")}
    assert {f"{rev}_artifacts_plots_{name}.png" for rev in ("HEAD", "workspace")
            for name in ("fakes_quality", "evaluation")} <= shown
    page = (repo / "plots_diff" / "index.html").read_text()
    assert "val_acc while training" in page and "relative_score" in page
    # `dvc exp run` with a student list the generated dvc.yaml was not made for: one line, no run
    params = (repo / "params.yaml").read_text()
    exp = sh("dvc", "exp", "run", "-S", "student.methods=[nokd,cgankd,blkd]", cwd=repo, check=False)
    assert exp.returncode != 0 and "no stage train-student-blkd" in exp.stdout + exp.stderr
    assert not (repo / "artifacts" / "students" / "blkd").exists()
    (repo / "params.yaml").write_text(params)  # DVC leaves the failed experiment's -S in the workspace

    # MLflow: a parent run per repro with a child per stage; the student is registered
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(f"sqlite:///{db}")
    client = MlflowClient()
    exp = client.get_experiment_by_name("cgankd")
    runs = client.search_runs([exp.experiment_id], max_results=200)
    parents = sorted((r for r in runs if r.data.tags.get("cgankd.kind") == "pipeline"),
                     key=lambda r: r.info.start_time)
    assert len(parents) == 2
    children = children_of(client, runs, parents[0])
    assert {r.data.tags["cgankd.stage"] for r in children} == {
        "prepare", "train-teacher", "train-extractor", "train-gan", "make-fakes", "train-student[nokd]",
        "train-student[cgankd]", "export", "evaluate", "register"}
    assert all(r.data.tags.get("mlflow.source.git.commit") for r in children)
    # a child run logs the params its stage reads (dvc.yaml's), the parent all of them
    gan = next(r for r in children if r.data.tags["cgankd.stage"] == "train-gan")
    # the training stages record CPU and memory use (tracking.system_metrics); the others do not
    system = {r.data.tags["cgankd.stage"] for r in children if any(k.startswith("system/") for k in r.data.metrics)}
    assert "train-teacher" in system and not system & {"prepare", "make-fakes", "export", "evaluate", "register"}
    assert "gan.d_steps" in gan.data.params and "seed" in gan.data.params
    assert not [k for k in gan.data.params if k.startswith(("student.", "filter.", "teacher.", "data."))]
    assert len(parents[0].data.params) > 2 * len(gan.data.params) and "filter.rho" in parents[0].data.params
    metrics_now = json.loads((repo / "artifacts" / "metrics.json").read_text())
    info = json.loads((repo / "artifacts" / "registry.json").read_text())
    assert info["version"] == (2 if "register" in ran(third) else 1)
    assert info["alias"] in ("champion", "challenger")

    # each run names the data versions it read by dvc.lock's md5 (mlflow's dataset inputs)
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]

    def locked(stage: str, where: str, path: str) -> str:
        return next(e["md5"] for e in lock[stage][where] if e["path"] == path)

    latest = {r.data.tags["cgankd.stage"]: r for r in children_of(client, runs, parents[-1])}
    inputs = {(i.dataset.name, next(t.value for t in i.tags if t.key == "mlflow.data.context")): i.dataset.digest
              for i in client.get_run(latest["train-student[cgankd]"].info.run_id).inputs.dataset_inputs}
    assert inputs == {("prepared", "training"): locked("prepare", "outs", "artifacts/prepared"),
                      ("fakes", "training"): locked("train-student-cgankd", "deps", "artifacts/fakes/fakes.npz")}
    made = {i.dataset.name: i.dataset.digest
            for i in client.get_run(latest["make-fakes"].info.run_id).inputs.dataset_inputs}
    assert made["fakes"] == locked("make-fakes", "outs", "artifacts/fakes")

    # a teammate: clone A pushes to the team's remote (a real WebDAV server, as team-stack starts it);
    # clone B pulls and has every output, so nothing re-runs
    store, password = repo.parent / "team-remote", "a-generated-password-of-the-stack"
    port = free_port()
    dav = dvc_remote.webdav_server(store, password, port, repo.parent / "wsgidav.yaml", repo.parent / "webdav.log")
    try:
        env = dvc_remote.client_env(password, port)
        dvc_remote.configure(repo, env)
        sh("git", "add", "-A", cwd=repo)
        sh("git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "rho 0.7", cwd=repo)
        sh("dvc", "push", "-q", cwd=repo)
        clone = repo.parent / "clone-b"
        sh("git", "clone", "-q", str(repo), str(clone), cwd=repo.parent)
        assert sh("dvc", "pull", "-q", cwd=clone, check=False).returncode != 0  # no remote configured yet
        said = sh("cgankd", "dvc-remote", cwd=clone, env=env).stdout  # as a teammate types it, client.env sourced
        assert said.startswith(f"dvc remote: {env['CGANKD_DVC_REMOTE_URL']} ") and password not in said
        sh("dvc", "pull", "-q", cwd=clone)
    finally:
        stop(dav)
    assert sh("dvc", "status", "--json", cwd=clone).stdout.strip() in ("{}", "")
    assert ran(sh("dvc", "repro", cwd=clone)) == set()
    assert dvc_md5(clone / "artifacts" / "fakes") == dvc_md5(repo / "artifacts" / "fakes") == \
        locked("make-fakes", "outs", "artifacts/fakes")
    assert json.loads((clone / "artifacts" / "metrics.json").read_text()) == metrics_now
    assert "password" not in (clone / ".dvc" / "config").read_text()  # credentials stay in config.local (0600)
    assert oct((clone / ".dvc" / "config.local").stat().st_mode & 0o777) == "0o600"

    # a second experiment: the stage runs of each nest under its own MLflow parent, as `dvc exp show` lists them
    assert ran(sh("dvc", "exp", "run", "-n", "exp-b", "-S", "tracking.promotion_margin=0.4", cwd=repo)) == {"register"}
    rows = list(csv.DictReader(io.StringIO(sh("dvc", "exp", "show", "--all-commits", "--csv", cwd=repo).stdout)))
    keys = ("filter.rho", "tracking.promotion_margin")
    shown = {r["Experiment"]: tuple(float(r[k]) for k in keys) for r in rows if r["Experiment"]}
    runs = client.search_runs([exp.experiment_id], max_results=500)
    by_exp = {r.data.tags["cgankd.dvc_exp"]: r for r in runs if "cgankd.dvc_exp" in r.data.tags}
    assert {k: tuple(float(r.data.params[p]) for p in keys) for k, r in by_exp.items()} == shown == \
        {"exp-a": (0.7, 0.5), "exp-b": (0.7, 0.4)}
    assert {r.data.tags["cgankd.stage"] for r in children_of(client, runs, by_exp["exp-a"])} == {
        label.replace("train-student-cgankd", "train-student[cgankd]") for label in ran(third)}
    assert [r.data.tags["cgankd.stage"] for r in children_of(client, runs, by_exp["exp-b"])] == ["register"]


def children_of(client, runs, parent) -> list:
    return [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]


def test_a_data_set_under_dvc_feeds_repro_and_a_new_version_reruns_what_reads_it(tmp_path, monkeypatch):
    """Your data versioned with `dvc add` in the repository (docs/pipeline.md, "A team shares ..."):
    prepare depends on the tracked folder, and its new version re-runs every stage that reads it."""
    monkeypatch.setenv("CGANKD_TRACKING", "off")  # what is tested is DVC on a data folder (tracking: the test above)
    repo = dvc_repo(tmp_path / "repo", shrunk(Path("artifacts"), "data.source=mnist", "data.root=data/mnist",
                                              "data.n_per_class=6", "data.n_val_per_class=2",
                                              "data.resolution=16", "student.methods=[nokd]").to_dict())
    root = make_mnist(repo / "data" / "mnist", n=120)
    sh("dvc", "add", "data/mnist", cwd=repo)
    first = sh(sys.executable, "-m", "cgankd", "repro", cwd=repo)
    graph = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]  # written by cgankd repro for these params
    assert ran(first) == set(graph) and "data/mnist" in graph["prepare"]["deps"]
    m = json.loads((repo / "artifacts" / "metrics.json").read_text())
    assert "nokd_test_acc" in m  # NOKD alone: the stages a data folder feeds, without the GAN's (tested above)
    assert (repo / "artifacts" / "export" / "student.onnx").is_file()
    # the one DVC metrics file is narrow: a terminal shows `dvc metrics show` whole, test metrics first
    table = sh("dvc", "metrics", "show", cwd=repo).stdout.splitlines()
    assert len(table) == 2 and max(map(len, table)) <= 160, "\n".join(table)
    assert table[0].split()[:3] == ["Path", "test_acc.nokd", "test_acc.teacher"], table[0]
    assert sh("dvc", "status", "--json", cwd=repo).stdout.strip() in ("{}", "")
    # a new version of the data: prepare's dependency changed; once prepare re-ran on it, every stage that
    # reads the prepared data is out of date (DVC re-runs a stage when its inputs change, not on a dry run)
    images = root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    write_idx(images.with_suffix(""), RNG.integers(0, 255, (120, 28, 28)), gz=True)
    status = json.loads(sh("dvc", "status", "--json", cwd=repo).stdout)
    assert set(status) == {"prepare", "data/mnist.dvc"} and "data/mnist" in json.dumps(status["prepare"])
    sh("dvc", "add", "data/mnist", cwd=repo)  # the new version, recorded
    assert ran(sh("dvc", "repro", "prepare", cwd=repo)) == {"prepare"}
    readers = {name for name, st in graph.items() if "artifacts/prepared" in st.get("deps", [])}
    assert {"train-teacher", "train-student-nokd", "evaluate"} <= readers
    assert set(json.loads(sh("dvc", "status", "--json", cwd=repo).stdout)) == readers
