"""Regression end to end on the embedded `rc` set and on an h5 file in the authors' layouts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml
from conftest import SHRINK, shrunk
from kit import dvc_repo, ran, sh

from cgankd.cli import main
from cgankd.compute.providers import cuda_usable

pytestmark = pytest.mark.slow


def run(out: Path, *extra: str) -> dict:
    args = ["run"] + [a for s in [*SHRINK, f"out_dir={out}", *extra] for a in ("-S", s)]
    assert main(args) == 0
    return json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def rc_repo(tmp_path_factory) -> tuple[Path, set[str]]:
    """One embedded regression pipeline through DVC (the same dvc.yaml, `task: regression` in params.yaml),
    tracked in the repository's own mlflow.db; the stages `cgankd repro` ran."""
    repo = dvc_repo(tmp_path_factory.mktemp("rc") / "repo",
                    shrunk(Path("artifacts"), "task=regression", "export.int8=true",
                           "export.fp16=true").to_dict())
    res = sh(sys.executable, "-m", "cgankd", "repro", cwd=repo,
             env={"MLFLOW_TRACKING_URI": f"sqlite:///{repo / 'mlflow.db'}"})
    return repo, ran(res)


def test_embedded_regression_through_dvc_registers_an_onnx_regressor(rc_repo, tmp_path, monkeypatch):
    import mlflow
    import onnxruntime as ort
    from mlflow.tracking import MlflowClient

    from cgankd.store import load_model

    repo, stages = rc_repo
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{repo / 'mlflow.db'}")
    assert stages == set(yaml.safe_load((repo / "dvc.yaml").read_text())["stages"])
    out = repo / "artifacts"
    m = json.loads((out / "metrics.json").read_text())
    shown = json.loads(sh("dvc", "metrics", "show", "--json", cwd=repo).stdout)[""]["data"]
    assert shown["artifacts/headline.json"]["data"]["test_mae"] == {
        k: m[f"{k}_test_mae"] for k in ("cgankd", "nokd", "teacher")}
    assert json.loads((out / "registry.json").read_text())["model_name"] == "cgankd-rc"
    for key in ("teacher_test_mae", "nokd_test_mae", "cgankd_test_mae", "nokd_test_mae_seen",
                "nokd_test_mae_unseen", "cgankd_minus_nokd_test_mae"):
        assert np.isfinite(m[key]), key
    assert 0 < m["nokd_test_mae"] < 90
    fakes = np.load(out / "fakes" / "fakes.npz")
    assert fakes["fake_images"].shape[1:] == (3, 16, 16)
    assert fakes["fake_labels"].min() >= 0 and fakes["fake_labels"].max() <= 90
    stats = json.loads((out / "metrics" / "fakes.json").read_text())
    assert stats["rho"] == 0.7 and stats["mean_label_shift"] > 0  # published regression defaults
    assert (out / "plots" / "evaluation.png").is_file() and (out / "gan" / "samples.png").is_file()

    champ = MlflowClient().get_model_version_by_alias("cgankd-rc", "champion")
    assert champ.tags["metric_name"] == "test_mae" and champ.tags["task"] == "regression"
    local = mlflow.artifacts.download_artifacts("models:/cgankd-rc@champion", dst_path=str(tmp_path / "dl"))
    sess = ort.InferenceSession(str(next(Path(local).rglob("*.onnx"))), providers=["CPUExecutionProvider"])
    model = load_model(out / "students" / champ.tags["method"] / "model.pt")
    x = torch.rand(7, 3, 16, 16)
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    assert got.shape == (7, 1)
    np.testing.assert_allclose(got, model(x).detach().numpy(), atol=1e-4)

    # the int8 twin (export.int8): calibrated, scored beside the fp32 ONNX model, logged only within the limit
    twin = ort.InferenceSession(str(out / "export" / "student.int8.onnx"), providers=["CPUExecutionProvider"])
    assert json.loads(twin.get_modelmeta().custom_metadata_map["precision"]) == "int8"
    import onnx

    assert "QuantizeLinear" in {n.op_type for n in onnx.load(out / "export" / "student.int8.onnx").graph.node}
    parity = json.loads((out / "export" / "parity.json").read_text())
    assert np.isfinite(m["onnx_int8_test_mae"])  # the fp32 ONNX model scores as its PyTorch student did
    assert abs(m["onnx_fp32_test_mae"] - m[f"{parity['method'].replace('+', '_')}_test_mae"]) < 1e-3
    assert parity["int8"]["real"] > 0 and parity["int8"]["fakes"] > 0  # calibrated on both, never on test data
    # the fp16 twin for a GPU (export.fp16): fp32 in and out, checked on the serving provider
    half = onnx.load(out / "export" / "student.fp16.onnx")
    assert {p.key: json.loads(p.value) for p in half.metadata_props}["precision"] == "fp16"
    assert parity["fp16"]["provider"] == ("CUDAExecutionProvider" if cuda_usable() else "CPUExecutionProvider")
    assert parity["fp16"]["max_abs_diff_batch64"] <= parity["fp16"]["atol"]
    ok = m["int8_registrable"] == 1.0
    assert champ.tags["int8"].startswith("logged" if ok else "refused") and m["int8_why"] in champ.tags["int8"]
    assert ("int8_sha256" in champ.tags) is ok
    assert "int8 twin: test mae" in (out / "report.md").read_text()
    # serve.precision=int8 serves the version's registered twin, checked against its digest
    from cgankd.base.errors import CgankdError
    from cgankd.serve.runtime import load_model as serve_model

    if ok:
        assert serve_model("models:/cgankd-rc@champion", "cpu", precision="int8").metadata()["precision"] == "int8"
    else:
        with pytest.raises(CgankdError, match="has no int8 twin"):
            serve_model("models:/cgankd-rc@champion", "cpu", precision="int8")
    assert serve_model("models:/cgankd-rc@champion", "cpu").metadata()["precision"] == "fp32"


def test_a_regressor_is_never_compared_with_a_classifiers_champion(rc_repo, monkeypatch):
    """One line, exit 2, nothing registered."""
    from mlflow.tracking import MlflowClient

    repo, _ = rc_repo
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{repo / 'mlflow.db'}")
    out = repo / "artifacts"
    champ = MlflowClient().get_model_version_by_alias("cgankd-rc", "champion")
    client = MlflowClient()
    client.create_registered_model("mixed")
    v = client.create_model_version("mixed", champ.source, champ.run_id)
    client.set_model_version_tag("mixed", v.version, "metric_name", "test_acc")
    client.set_registered_model_alias("mixed", "champion", v.version)
    args = ["register"] + [a for s in [*SHRINK, f"out_dir={out}", "task=regression",
                                       "tracking.model_name=mixed"] for a in ("-S", s)]
    assert main(args) == 2
    assert len(client.search_model_versions("name='mixed'")) == 1


@pytest.mark.parametrize("layout", ["split", "rc49-pool"])
def test_h5_file_runs_through_every_regression_stage(tmp_path, layout):
    rng = np.random.default_rng(0)
    path = tmp_path / "angles.h5"
    with h5py.File(path, "w") as f:
        if layout == "split":  # 1-channel 16x16, labels 10..70 years: size and range read from the file
            f["images_train"] = rng.integers(0, 255, (120, 1, 16, 16)).astype(np.uint8)
            f["labels_train"] = np.repeat(np.linspace(10.0, 70.0, 30), 4)
            f["images_test"] = rng.integers(0, 255, (30, 1, 16, 16)).astype(np.uint8)
            f["labels_test"] = np.linspace(10, 70, 30)
        else:
            f["images"] = rng.integers(0, 255, (800, 3, 16, 16)).astype(np.uint8)
            f["labels"] = np.repeat(np.arange(0.0, 90.0, 1.8), 16)
            f["types"] = np.tile(np.arange(16), 50)
    out = tmp_path / "out"
    m = run(out, "task=regression", "data.source=h5", f"data.root={path}")
    assert "nokd_test_mae" in m and "cgankd_test_mae" in m
    meta = json.loads((out / "prepared" / "meta.json").read_text())
    assert meta["resolution"] == 16
    if layout == "split":
        assert meta["channels"] == 1 and meta["label_range"] == [10.0, 70.0]
    else:  # every 2nd distinct angle for training; unseen angles in the test split
        assert meta["provenance"]["train_labels"] == 25
        assert "nokd_test_mae_unseen" in m and "nokd_test_mae_seen" in m
