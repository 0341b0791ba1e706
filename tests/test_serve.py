"""`cgankd serve` as a real process on a free loopback port: predictions equal the PyTorch
student's for real PNGs of the embedded data; every bad input is a 4xx JSON error and the server
keeps serving; reload under load drops nothing; `cgankd predict` writes the same as CSV."""

from __future__ import annotations

import csv
import io
import json
import threading

import httpx
import numpy as np
import pytest
from conftest import shrunk
from kit.onnx_student import export, torch_outputs, trained_student
from PIL import Image

from cgankd.serve.process import bearer, start_server, stop_server

N = 24
TOKEN = "operator-token-0123456789abcdef0123456789"


def png(arr_chw: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    img = Image.fromarray(arr_chw.transpose(1, 2, 0) if arr_chw.shape[0] == 3 else arr_chw[0])
    (img.convert(mode) if mode else img).save(buf, "PNG")
    return buf.getvalue()


def npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from cgankd.stages.prepare import build

    tmp = tmp_path_factory.mktemp("serve")
    data = build(shrunk(tmp / "artifacts"))
    model = trained_student(data)
    path = export(model, data, tmp / "student.onnx")
    images = data["test"].images[:N]
    proc, url = start_server(str(path), "--max-body-mb", "1", "--max-batch", "64", "--threads", "1", token=TOKEN)
    try:
        yield {"url": url, "data": data, "model": model, "images": images, "path": path, "tmp": tmp,
               "expected": softmax(torch_outputs(model, images).astype(np.float64))}
    finally:
        stop_server(proc)


def check_same(body: dict, expected: np.ndarray, classes: list[str]) -> None:
    preds = body["predictions"]
    assert len(preds) == len(expected)
    assert [p["index"] for p in preds] == expected.argmax(1).tolist()
    assert [p["class"] for p in preds] == [classes[i] for i in expected.argmax(1)]
    got = np.array([list(p["probabilities"].values()) for p in preds])
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_png_uploads_give_the_pytorch_students_predictions(served):
    files = [("files", (f"{i}.png", png(im), "image/png")) for i, im in enumerate(served["images"])]
    r = httpx.post(f"{served['url']}/predict", files=files, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    check_same(body, served["expected"], served["data"].meta.classes)
    assert [p["file"] for p in body["predictions"]] == [f"{i}.png" for i in range(N)]
    assert len(set(p["class"] for p in body["predictions"])) > 1  # a trained model, not a constant


def test_raw_png_jpeg_npy_and_json_bodies(served):
    url, images, expected = f"{served['url']}/predict", served["images"], served["expected"]
    classes = served["data"].meta.classes
    r = httpx.post(url, content=png(images[3]), headers={"content-type": "image/png"})
    check_same(r.json(), expected[3:4], classes)
    check_same(httpx.post(url, content=npy(images)).json(), expected, classes)  # uint8 pixels
    x = images.astype(np.float32) / 255.0
    check_same(httpx.post(url, content=npy(x)).json(), expected, classes)  # the model input itself
    r = httpx.post(url, json={"inputs": x[:4].tolist()})
    check_same(r.json(), expected[:4], classes)
    r = httpx.post(url, json=x[0].tolist())  # one C x H x W input
    check_same(r.json(), expected[:1], classes)
    buf = io.BytesIO()
    Image.fromarray(images[0].transpose(1, 2, 0)).save(buf, "JPEG", quality=95)
    r = httpx.post(url, content=buf.getvalue(), headers={"content-type": "image/jpeg"})
    assert r.status_code == 200 and r.json()["predictions"][0]["class"] in classes  # lossy: no equality


def test_metadata_and_readiness(served):
    meta = httpx.get(f"{served['url']}/metadata").json()
    m = served["data"].meta
    assert meta["task"] == "classification" and meta["classes"] == m.classes
    assert meta["input_shape"] == ["N", m.channels, m.resolution, m.resolution]
    assert meta["preprocess"]["divide_by"] == 255.0 and meta["preprocess"]["resize"] == "none"
    assert meta["precision"] == "fp32"
    assert meta["providers"] == ["CPUExecutionProvider"]
    assert httpx.get(f"{served['url']}/ready").json()["ready"] is True


def bad_cases(images: np.ndarray) -> list[tuple[str, dict, int]]:
    im = images[0]
    truncated = png(im)[:60]
    rgba = png(im, "RGBA")
    gray = png(im, "L")
    big = np.zeros((3, 20, 20), np.uint8)
    nan = images[:2].astype(np.float32) / 255
    nan[0, 0, 0, 0] = np.nan
    return [
        ("not an image", {"content": b"hello, not an image", "headers": {"content-type": "image/png"}}, 415),
        ("text file upload", {"files": [("files", ("a.txt", b"plain text", "text/plain"))]}, 415),
        ("truncated PNG", {"content": truncated}, 422),
        ("RGBA (4 channels)", {"content": rgba}, 422),
        ("grayscale for an RGB model", {"files": [("files", ("g.png", gray, "image/png"))]}, 422),
        ("wrong size", {"content": png(big)}, 422),
        ("wrong shape JSON", {"json": [[0.1, 0.2]]}, 422),
        ("wrong shape npy", {"content": npy(np.zeros((2, 3, 8, 8), np.float32))}, 422),
        ("wrong dtype", {"content": npy(images[:2].astype(np.int64))}, 422),
        ("strings in JSON", {"json": {"inputs": [["a", "b"]]}}, 422),
        ("NaN in npy", {"content": npy(nan)}, 422),
        ("NaN in JSON", {"content": json.dumps(nan.tolist()), "headers": {"content-type": "application/json"}},
         422),
        ("floats out of [0, 1]", {"content": npy(images[:2].astype(np.float32))}, 422),
        ("empty JSON batch", {"json": []}, 422),
        ("empty npy batch", {"content": npy(np.zeros((0, *images.shape[1:]), np.uint8))}, 422),
        ("empty body", {"content": b""}, 422),
        ("multipart without files", {"data": {"field": "x"}, "files": [("nothing", ("", b"", "x"))]}, 422),
        ("invalid JSON", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 400),
        ("JSON object without inputs", {"json": {"data": [1]}}, 422),
        ("batch over --max-batch", {"content": npy(np.zeros((65, *images.shape[1:]), np.uint8))}, 413),
        ("body over --max-body-mb", {"content": b"\x93NUMPY" + b"0" * (1024 * 1024 + 10)}, 413),
        ("oversize chunked body", {"content": iter([b"\x93NUMPY", b"0" * (1024 * 1024 + 10)])}, 413),
    ]


def test_every_bad_input_is_a_4xx_json_error_and_the_server_keeps_serving(served):
    url = f"{served['url']}/predict"
    for what, kwargs, status in bad_cases(served["images"]):
        r = httpx.post(url, timeout=30, **kwargs)
        assert r.status_code == status, (what, r.status_code, r.text)
        assert r.headers["content-type"] == "application/json" and r.json()["error"], what
    assert httpx.get(f"{served['url']}/healthz").json() == {"status": "ok"}
    r = httpx.post(url, content=npy(served["images"]))
    check_same(r.json(), served["expected"], served["data"].meta.classes)


def test_bad_input_messages_say_what_was_wrong(served):
    url, images = f"{served['url']}/predict", served["images"]
    big = np.zeros((3, 20, 20), np.uint8)
    assert "20x20" in httpx.post(url, content=png(big)).json()["error"]
    assert "not resized" in httpx.post(url, content=png(big)).json()["error"]
    assert "RGBA" in httpx.post(url, content=png(images[0], "RGBA")).json()["error"]
    assert "int64" in httpx.post(url, content=npy(images[:1].astype(np.int64))).json()["error"]
    assert "truncated" in httpx.post(url, content=png(images[0])[:60]).json()["error"]


def test_reload_under_load_drops_no_request(served):
    url = served["url"]
    body = npy(served["images"][:4])
    statuses: list[int] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(timeout=30) as c:
            while not stop.is_set():
                statuses.append(c.post(f"{url}/predict", content=body).status_code)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    before = httpx.get(f"{url}/metadata").json()["reloads"]
    for _ in range(5):
        assert httpx.post(f"{url}/reload", timeout=30, headers=bearer(TOKEN)).json()["reloaded"] is True
    stop.set()
    for t in threads:
        t.join()
    assert len(statuses) > 10 and set(statuses) == {200}
    assert httpx.get(f"{url}/metadata").json()["reloads"] == before + 5
    assert httpx.get(f"{url}/healthz").status_code == 200


def test_predict_cli_writes_the_same_predictions_as_csv(served, tmp_path):
    from cgankd.cli import main

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, im in enumerate(served["images"]):
        (folder / f"{i:03d}.png").write_bytes(png(im))
    out = tmp_path / "preds.csv"
    assert main(["predict", str(served["path"]), "-i", str(folder), "-o", str(out), "--batch-size", "5"]) == 0
    rows = list(csv.DictReader(out.open()))
    classes = served["data"].meta.classes
    assert [r["input"] for r in rows] == [f"{i:03d}.png" for i in range(N)]
    assert [r["class"] for r in rows] == [classes[i] for i in served["expected"].argmax(1)]
    probs = np.array([[float(r[f"p_{c}"]) for c in classes] for r in rows])
    np.testing.assert_allclose(probs, served["expected"], atol=2e-5)
    arr = tmp_path / "x.npy"
    np.save(arr, served["images"])
    assert main(["predict", str(served["path"]), "-i", str(arr), "-o", str(tmp_path / "a.csv")]) == 0
    assert [r["class"] for r in csv.DictReader((tmp_path / "a.csv").open())] == [r["class"] for r in rows]


def test_predict_cli_refuses_bad_input_in_one_line(served, tmp_path, capsys):
    from cgankd.cli import main

    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "a.png").write_bytes(png(served["images"][0]))
    (folder / "b.png").write_bytes(png(np.zeros((3, 20, 20), np.uint8)))
    out = tmp_path / "p.csv"
    assert main(["predict", str(served["path"]), "-i", str(folder), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "b.png" in err[0] and "20x20" in err[0]
    assert not out.exists()  # nothing half-written
    assert main(["predict", str(served["path"]), "-i", str(tmp_path / "none"), "-o", str(out)]) == 2
    assert main(["predict", str(tmp_path / "nope.onnx"), "-i", str(folder), "-o", str(out)]) == 2


def test_regressor_answers_in_the_labels_unit(tmp_path):
    """In process (FastAPI TestClient): the scalar comes back in degrees, as the evaluate stage
    computes it from the PyTorch student."""
    from fastapi.testclient import TestClient

    from cgankd.config.sections import ServeCfg
    from cgankd.serve.app import Holder, create_app
    from cgankd.serve.runtime import load_model
    from cgankd.stages.prepare import build

    data = build(shrunk(tmp_path / "artifacts", "task=regression"))
    model = trained_student(data, "convnet_xs", steps=20)
    path = export(model, data, tmp_path / "reg.onnx", "cgankd")
    served = load_model(str(path), "cpu")
    client = TestClient(create_app(Holder(served, lambda s: load_model(s, "cpu"), str(path)),
                                   ServeCfg(max_body_mb=1.0, batching=False)))
    images = data["test"].images[:8]
    r = client.post("/predict", content=npy(images))
    assert r.status_code == 200, r.text
    want = data.meta.unscale(torch_outputs(model, images).reshape(-1))
    got = [p["value"] for p in r.json()["predictions"]]
    np.testing.assert_allclose(got, want, atol=1e-3)
    assert {p["unit"] for p in r.json()["predictions"]} == {data.meta.label_unit}
    meta = client.get("/metadata").json()
    assert meta["task"] == "regression" and meta["label_range"] == data.meta.label_range
    assert client.post("/predict", json=[]).status_code == 422


def test_old_exports_without_serving_metadata_are_refused(tmp_path):
    from cgankd.base.errors import CgankdError
    from cgankd.models import build_model
    from cgankd.serve.onnx_export import export_onnx
    from cgankd.serve.runtime import load_model

    path = tmp_path / "old.onnx"
    export_onnx(build_model("convnet_xs", 3, 4, 16).eval(), path, 3, 16, 18, False, {"task": "classification"})
    with pytest.raises(CgankdError, match="re-run `cgankd export`"):
        load_model(str(path), "cpu")


# --- the Open Inference Protocol v2 (cgankd/serve/v2.py) on the same live server, as Triton's client sees it


def _triton(served):
    http = pytest.importorskip("tritonclient.http")
    return http, http.InferenceServerClient(served["url"].removeprefix("http://"))


def _direct(served, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(served["path"]), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def test_a_triton_client_reads_the_model_and_infers_what_predict_and_onnxruntime_give(served):
    http, client = _triton(served)
    name = served["path"].stem
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(name)
    meta = client.get_model_metadata(name)
    m = served["data"].meta
    assert meta["platform"] == "onnxruntime_onnx" and meta["inputs"][0]["datatype"] == "FP32"
    assert meta["inputs"][0]["shape"] == [-1, m.channels, m.resolution, m.resolution]
    assert {o["name"]: o["shape"] for o in meta["outputs"]} == {"logits": [-1, len(m.classes)],
                                                                "probabilities": [-1, len(m.classes)]}
    images = served["images"]
    x = images.astype(np.float32) / np.float32(255.0)
    predict = httpx.post(f"{served['url']}/predict", content=npy(images)).json()["predictions"]
    from_predict = np.array([list(p["probabilities"].values()) for p in predict])
    logits = _direct(served, x)
    for datatype, arr in (("FP32", x), ("UINT8", images)):
        for binary in (True, False):
            inp = http.InferInput(meta["inputs"][0]["name"], list(arr.shape), datatype)
            inp.set_data_from_numpy(arr, binary_data=binary)
            outs = [http.InferRequestedOutput(k, binary_data=binary) for k in ("logits", "probabilities")]
            res = client.infer(name, [inp], outputs=outs, request_id="r1")
            np.testing.assert_allclose(res.as_numpy("logits"), logits, atol=1e-6, rtol=0)
            np.testing.assert_allclose(res.as_numpy("probabilities"), from_predict, atol=1e-6, rtol=0)
            assert res.get_response()["id"] == "r1"
    res = client.infer(name, [inp])  # no outputs named: all of them, binary (the client's default)
    np.testing.assert_allclose(res.as_numpy("probabilities"), softmax(logits.astype(np.float64)), atol=1e-6)
    client.close()


V2_BAD = [  # (path suffix, body, status, words)
    ("/infer", {"inputs": []}, 400, "expected one tensor"),
    ("/infer", {"inputs": [{"name": "nope", "shape": [1, 3, 16, 16], "datatype": "FP32", "data": [0]}]}, 400,
     "the model's input is"),
    ("/infer", {"inputs": [{"name": "{in}", "shape": [1, 3, 16, 16], "datatype": "INT64", "data": [0]}]}, 400,
     "send FP32"),
    ("/infer", {"inputs": [{"name": "{in}", "shape": [1, 1, 2, 2], "datatype": "FP32", "data": [0] * 4}]}, 400,
     "the model takes [N, "),
    ("/infer", {"inputs": [{"name": "{in}", "shape": "{shape}", "datatype": "FP32", "data": [0.5] * 7}]}, 400,
     "values; shape"),
    ("/infer", {"inputs": [{"name": "{in}", "shape": "{shape}", "datatype": "FP32", "data": "{data2}"}]}, 422,
     "floats must lie in [0, 1]"),
    ("/infer", {"inputs": [{"name": "{in}", "shape": "{shape}", "datatype": "UINT8", "data": "{data300}"}]}, 400,
     "integers in 0..255"),
    ("/infer", {"inputs": [{"name": "{in}", "shape": "{shape}", "datatype": "FP32", "data": "{data}"}],
                "outputs": [{"name": "secrets"}]}, 400, "is not an output"),
    ("/versions/999/infer", {"inputs": []}, 404, "version '999' is not served"),
]


@pytest.mark.parametrize("suffix,body,status,words", V2_BAD)
def test_bad_v2_requests_are_4xx_naming_what_is_wrong(served, suffix, body, status, words):
    name = served["path"].stem
    meta = httpx.get(f"{served['url']}/v2/models/{name}").json()
    shape = meta["inputs"][0]["shape"][1:]
    n = int(np.prod(shape))
    fill = {'"{in}"': json.dumps(meta["inputs"][0]["name"]), '"{shape}"': json.dumps([1, *shape]),
            '"{data}"': json.dumps([0.5] * n), '"{data2}"': json.dumps([2.0] * n), '"{data300}"': json.dumps([300] * n)}
    text = json.dumps(body)
    for k, v in fill.items():
        text = text.replace(k, v)
    r = httpx.post(f"{served['url']}/v2/models/{name}{suffix}", content=text,
                   headers={"content-type": "application/json"})
    assert r.status_code == status and words in r.json()["error"], r.text
    assert httpx.post(f"{served['url']}/v2/models/other/infer", content=text).status_code == 404


def test_v2_routes_are_in_the_openapi_schema_and_counted_by_template(served):
    doc = httpx.get(f"{served['url']}/openapi.json").json()
    assert {"/v2", "/v2/health/live", "/v2/health/ready", "/v2/models/{name}", "/v2/models/{name}/ready",
            "/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"} <= set(doc["paths"])
    infer = doc["paths"]["/v2/models/{name}/infer"]["post"]
    assert infer["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/V2InferRequest")
    assert "V2InferRequest" in doc["components"]["schemas"]
    httpx.get(f"{served['url']}/v2/models/a-scanner-invents-names/ready")
    text = httpx.get(f"{served['url']}/metrics").text
    assert 'route="/v2/models/{name}/ready"' in text and "a-scanner-invents-names" not in text


def test_the_batcher_gathers_concurrent_requests_and_gives_each_its_own_rows(served):
    """Real onnxruntime: 20 concurrent requests of 1-3 inputs (39) take a few calls of up to 8 inputs (the
    first runs at once, the others gather while a call runs), each answer equals its own inputs run alone;
    a request of max_batch runs alone; a failed call fails each request of its batch."""
    import asyncio

    from cgankd.serve.batcher import Batcher
    from cgankd.serve.runtime import load_model

    model = load_model(str(served["path"]), "cpu")
    x = served["images"].astype(np.float32) / np.float32(255.0)
    calls: list[int] = []

    batches: list[np.ndarray] = []

    def run(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))  # in the order the pool's threads start them, not the order of the batches
        batches.append(batch.copy())
        if (batch == 0).all():
            raise RuntimeError("the model failed")
        return model.run(batch)

    parts = [x[i % 20:i % 20 + 1 + i % 3] for i in range(20)]

    async def main() -> list:
        b = Batcher(run, max_batch=8, max_wait_s=0.05)
        out = await asyncio.gather(*(b(p) for p in parts))
        alone = await b(x[:8])
        bad = await asyncio.gather(b(x[:1]), b(np.zeros_like(x[:1])), b(np.zeros_like(x[:2])), return_exceptions=True)
        return [out, alone, bad]

    out, alone, bad = asyncio.run(main())
    for p, o in zip(parts, out, strict=True):
        np.testing.assert_allclose(o, model.run(p), atol=1e-6, rtol=0)
    gathered = calls[:-3]  # before the lone request's call and the last two
    assert sum(gathered) == 39 and len(gathered) <= 7 and max(gathered) <= 8  # 20 requests, 39 inputs: <= 7 calls
    assert any(len(b) == 1 and np.array_equal(b, parts[0]) for b in batches)  # the first found the model idle
    np.testing.assert_allclose(alone, model.run(x[:8]), atol=1e-6, rtol=0)
    assert calls[-2:] == [1, 3] and isinstance(bad[0], np.ndarray)  # the two failing requests shared a call ...
    assert all(isinstance(e, RuntimeError) for e in bad[1:])  # ... and both got its error


def test_int8_precision_picks_a_registered_twin_not_a_file(tmp_path):
    from cgankd.base.errors import CgankdError
    from cgankd.serve.runtime import load_model

    with pytest.raises(CgankdError, match="param serve.precision: int8 picks a registered version's twin"):
        load_model(str(tmp_path / "student.onnx"), "cpu", precision="int8")
