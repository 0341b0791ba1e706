"""`cgankd compare` end to end on the embedded classification data (shrunken): two students of
one teacher, every method, the paper-style table, MLflow parent + children, resume; and a
pipeline run whose method list mixes distillers with and without fakes."""

import json

import pytest
import yaml
from conftest import shrunk

from cgankd.base.errors import CgankdError
from cgankd.sweeps.comparison import DEFAULT_METHODS, parse_pairs, run_compare

VKD_FAST = ["vkd.steps=30", "vkd.views=2"]


@pytest.mark.slow
def test_compare_table_children_and_resume(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(shrunk(tmp_path / "unused", *VKD_FAST).to_dict(), sort_keys=False))
    work = tmp_path / "cmp"
    pairs = parse_pairs(["resnet8:convnet_xs", "resnet8:convnet_s"])
    res = run_compare(params, [], pairs, DEFAULT_METHODS, [0], work)
    assert len(res["rows"]) == 2 * len(DEFAULT_METHODS)
    order = [r["method"] for r in res["rows"][: len(DEFAULT_METHODS)]]
    assert order.index("blkd") < order.index("cgankd+blkd")  # fine-tune starts from blkd
    by = {(r["student"], r["method"]): r["metrics"] for r in res["rows"]}
    assert by[("convnet_xs", "nokd")]["params"] < by[("convnet_s", "nokd")]["params"]
    assert by[("convnet_s", "cgankd+vkd")]["n_fakes"] > 0 and by[("convnet_s", "vkd")]["n_fakes"] == 0
    seed_dir = work / "classification" / "seed0" / "teacher-resnet8"
    for student in ("convnet_xs", "convnet_s"):  # pairs sharing a teacher keep their own students
        for m in DEFAULT_METHODS:
            assert (seed_dir / "students" / student / m / "model.pt").is_file()
            saved = json.loads((seed_dir / "metrics" / f"student_{student}_{m}.json").read_text())
            assert saved["test_acc"] == by[(student, m)]["test_acc"]
    hist = (seed_dir / "students" / "convnet_s" / "fitnet" / "history.csv").read_text().splitlines()[0]
    assert "train_loss_ce" in hist and "train_loss_hint" in hist
    md = (work / "compare_objects.md").read_text()
    assert "| resnet8 -> convnet_s" in md and "cGAN-KD + FitNet" in md and "Difference to NOKD" in md

    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    exp = client.get_experiment_by_name("cgankd")
    children = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{res['parent_run_id']}'")
    names = {r.info.run_name for r in children}
    assert {f"seed0/resnet8->convnet_s/{m}" for m in DEFAULT_METHODS} <= names
    child = next(r for r in children if r.info.run_name == "seed0/resnet8->convnet_xs/cgankd+blkd")
    assert {"loss_kd", "test_acc"} <= {k.removeprefix("train_") for k in child.data.metrics}
    assert child.data.tags["cgankd.distiller"] == "blkd"

    again = run_compare(params, [], pairs, DEFAULT_METHODS, [0], work, reuse=True, resume=True)
    assert again["rows"] == json.loads((work / "compare_objects.json").read_text())["rows"]


@pytest.mark.slow
def test_pipeline_with_mixed_methods_exports_the_best_validation_student(tmp_path):
    from cgankd.base.io import read_json
    from cgankd.pipeline.runner import run_pipeline

    cfg = shrunk(tmp_path / "a", *VKD_FAST, "student.methods=[nokd, blkd, cgankd+blkd, vkd]")
    run_pipeline(cfg)
    metrics = read_json(cfg.path("metrics.json"))
    assert {"nokd_test_acc", "blkd_test_acc", "cgankd_blkd_test_acc", "vkd_test_acc"} <= set(metrics)
    assert metrics["selected"] in ("nokd", "blkd", "cgankd+blkd", "vkd")
    assert cfg.path("vkd", "generator.pt").is_file() and cfg.path("fakes", "fakes.npz").is_file()


def test_bad_pairs_are_one_line_errors():
    with pytest.raises(CgankdError, match="TEACHER:STUDENT"):
        parse_pairs(["resnet20"])
    with pytest.raises(CgankdError, match="model 'resnet9'"):
        parse_pairs(["resnet9:convnet_s"])
