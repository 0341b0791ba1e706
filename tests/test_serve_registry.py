"""Serving from the MLflow registry: champion/challenger with a margin, `cgankd serve` on
models:/<name>@champion following promotions through /reload, unknown aliases refused, and the
registered ONNX student through MLflow's own pyfunc and `mlflow models serve`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from conftest import shrunk
from kit.onnx_student import export, torch_outputs, trained_student

from cgankd.ops.promotion import decide
from cgankd.serve.process import bearer, free_port, start_server, stop_server

NAME = "cgankd-objects"


def test_decide_needs_more_than_the_margin():
    assert decide("test_acc", 70.0, None, None, True, 0.5).promote
    assert decide("test_acc", 70.6, 70.0, "1", True, 0.5).promote
    d = decide("test_acc", 70.5, 70.0, "1", True, 0.5)
    assert not d.promote and "does not exceed margin 0.5" in d.reason and "v1" in d.reason
    assert not decide("test_acc", 69.0, 70.0, "1", True, 0.0).promote
    assert decide("test_mae", 9.0, 10.0, "2", False, 0.5).promote  # MAE: lower is better
    assert not decide("test_mae", 9.6, 10.0, "2", False, 0.5).promote
    assert not decide("test_mae", 11.0, 10.0, "2", False, 0.0).promote


@pytest.mark.slow
def test_registry_serving_follows_the_champion(tmp_path):
    import mlflow
    from mlflow.tracking import MlflowClient

    from cgankd.cli import main
    from cgankd.ops.model_registry import register_student
    from cgankd.ops.tracking import stage_run
    from cgankd.serve.pyfunc import StudentModel
    from cgankd.stages.prepare import build

    cfg = shrunk(tmp_path / "artifacts")
    data = build(cfg)
    model = trained_student(data)
    onnx_path = export(model, data, tmp_path / "student.onnx")
    sample = torch.rand(2, data.meta.channels, data.meta.resolution, data.meta.resolution)

    def register(metric: float) -> dict:
        with stage_run(cfg, "register") as tracker:
            return register_student(cfg, onnx_path, model, sample, metric,
                                    {"metric_name": "test_acc", "method": "nokd", "pyfunc": StudentModel()}, tracker)

    assert register(60.0)["alias"] == "champion"
    second = register(60.3)  # +0.3 does not exceed the default margin 0.5
    assert second["alias"] == "challenger" and "does not exceed margin 0.5" in second["reason"]
    client = MlflowClient()
    assert client.get_model_version(NAME, "2").tags["promotion"] == second["reason"]
    # the ONNX file is the pyfunc's one artifact: cgankd serve and MLflow read the same file
    flavor = mlflow.models.get_model_info(f"models:/{NAME}/2").flavors["python_function"]
    assert flavor["python_model"] and set(flavor["artifacts"]) == {"student_onnx"}
    # the requirements are given, pinned to this environment, not inferred (a child process per model)
    for registered, needs in ((NAME, {"onnx", "onnxruntime", "cloudpickle"}),
                              (f"{NAME}-pytorch", {"torch", "cloudpickle"})):
        listed = Path(mlflow.pyfunc.get_model_dependencies(f"models:/{registered}/2")).read_text().split()
        assert {r.split("==")[0] for r in listed} == {"mlflow", "numpy", *needs}, listed
        assert f"numpy=={np.__version__}" in listed and f"mlflow=={mlflow.__version__}" in listed

    token = "registry-operator-0123456789abcdef0123456789"
    proc, url = start_server(f"models:/{NAME}@champion", "--providers", "cpu", token=token)
    try:
        assert httpx.get(f"{url}/metadata").json()["version"] == 1
        images = data["test"].images[:6]
        want = torch_outputs(model, images).argmax(1).tolist()
        import io

        buf = io.BytesIO()
        np.save(buf, images)
        r = httpx.post(f"{url}/predict", content=buf.getvalue())
        assert [p["index"] for p in r.json()["predictions"]] == want
        assert r.json()["model"] == {"name": NAME, "version": 1}
        # a smaller margin promotes v2 (the promotion flow's function, through the CLI)
        assert main(["promote", "--version", "2", "--margin", "0.1", "-S", f"out_dir={tmp_path}"]) == 0
        champ = client.get_model_version_by_alias(NAME, "champion")
        assert int(champ.version) == 2 and champ.aliases == ["champion"]  # no longer the challenger
        twin = client.get_model_version_by_alias(f"{NAME}-pytorch", "champion")  # the aliases move together
        assert str(twin.version) == champ.tags["pytorch_version"] and twin.aliases == ["champion"]
        assert httpx.post(f"{url}/reload", headers=bearer(token)).json()["version"] == 2
        assert register(61.0)["alias"] == "champion"  # +0.7 > 0.5
        assert httpx.post(f"{url}/reload", headers=bearer(token)).json()["version"] == 3
        r = httpx.post(f"{url}/reload", headers=bearer(token), json={"alias": "nope"})
        assert r.status_code == 404 and "no alias 'nope'" in r.json()["error"], r.text
        assert "champion" in r.json()["error"]  # the known aliases are listed
        assert httpx.get(f"{url}/healthz").status_code == 200
        assert httpx.get(f"{url}/metadata").json()["version"] == 3
        r = httpx.post(f"{url}/reload", headers=bearer(token), json={"version": 1})  # another version of it
        assert r.status_code == 200 and r.json()["version"] == 1
        assert httpx.post(f"{url}/reload", headers=bearer(token)).json()["version"] == 3  # the champion again
    finally:
        stop_server(proc)
    out = subprocess.run([sys.executable, "-m", "cgankd", "serve", f"models:/{NAME}@nope",
                          "--port", str(free_port())], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0, out.stderr
    assert "no alias 'nope'" in out.stderr

    # MLflow's own ways: pyfunc, and `mlflow models serve`
    x = images.astype(np.float32) / 255
    proc, url = start_server(f"models:/{NAME}@champion", "--providers", "cpu")
    try:  # what cgankd serve answers for the same inputs
        served = httpx.post(f"{url}/predict", json={"inputs": x.tolist()}).json()["predictions"]
    finally:
        stop_server(proc)
    z = torch_outputs(model, images).astype(np.float64)
    probs = np.exp(z - z.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    for n in (1, len(x)):  # any batch size: classes and probabilities, as cgankd serve gives them
        rows = pyfunc.predict(x[:n])
        assert [r["class"] for r in rows] == [data.meta.classes[i] for i in probs[:n].argmax(1)]
        np.testing.assert_allclose([list(r["probabilities"].values()) for r in rows], probs[:n], atol=2e-5)
        assert rows == served[:n]
    weights = mlflow.pytorch.load_model(f"models:/{NAME}-pytorch@champion")  # the champion, as PyTorch
    np.testing.assert_allclose(torch_outputs(weights, images[:2]), torch_outputs(model, images[:2]), atol=1e-5)
    port = free_port()
    bindir = os.path.dirname(sys.executable)  # mlflow runs `uvicorn` from PATH: the venv must be on it
    mlf = subprocess.Popen([os.path.join(bindir, "mlflow"), "models", "serve", "-m", f"models:/{NAME}@champion",
                            "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env={**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")})
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert mlf.poll() is None, mlf.stdout.read()
                if time.monotonic() > deadline:
                    mlf.kill()
                    pytest.fail(f"mlflow models serve did not start: {mlf.stdout.read()}")
                time.sleep(0.5)
        r = httpx.post(f"http://127.0.0.1:{port}/invocations", json={"inputs": x.tolist()}, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == served  # mlflow models serve answers what cgankd serve answers
    finally:
        mlf.terminate()
        mlf.wait(timeout=30)
    # a version's ONNX file changed in the artifact store after register is refused before it serves
    from urllib.parse import urlparse

    from cgankd.base.errors import CgankdError
    from cgankd.ops.model_registry import fetch_registered

    client = MlflowClient()
    champion = client.get_model_version_by_alias(NAME, "champion")
    stored = Path(urlparse(client.get_model_version_download_uri(NAME, champion.version)).path)
    onnx_file = sorted(stored.rglob("*.onnx"))[0]
    onnx_file.write_bytes(onnx_file.read_bytes() + b"\0")
    with pytest.raises(CgankdError, match="ONNX file is not the one registered"):
        fetch_registered(f"models:/{NAME}@champion", tmp_path / "fetched")
