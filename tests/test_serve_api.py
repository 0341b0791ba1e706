"""The serving API as a client generated from it would see it: ``/openapi.json`` declares /predict's
request bodies and typed answers, every real answer validates against the declared schema, the
JSON forms (arrays, base64 images) give the same predictions, and ``/metrics`` is Prometheus text
that counts what happened."""

from __future__ import annotations

import base64
import io
import json

import jsonschema
import numpy as np
import pytest
from conftest import shrunk
from fastapi.testclient import TestClient
from kit.onnx_student import export, trained_student
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families


def png(arr_chw: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr_chw.transpose(1, 2, 0)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    from cgankd.config.sections import ServeCfg
    from cgankd.serve.app import Holder, create_app
    from cgankd.serve.runtime import load_model
    from cgankd.stages.prepare import build

    tmp = tmp_path_factory.mktemp("api")
    data = build(shrunk(tmp / "artifacts"))
    path = export(trained_student(data, "convnet_xs", steps=20), data, tmp / "student.onnx")
    app = create_app(Holder(load_model(str(path), "cpu"), lambda s: load_model(s, "cpu"), str(path)),
                     ServeCfg(max_body_mb=1.0, max_batch=16, batching=False))
    with TestClient(app) as client:
        yield {"client": client, "images": data["test"].images[:6], "classes": data.meta.classes,
               "doc": client.get("/openapi.json").json(), "path": path}


def validator(doc: dict, name: str) -> jsonschema.Draft202012Validator:
    """A validator of components/schemas/<name>, $refs resolved inside the OpenAPI document."""
    return jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{name}", **doc})


def test_openapi_declares_the_request_bodies_and_typed_answers(api):
    doc = api["doc"]
    post = doc["paths"]["/predict"]["post"]
    assert set(post["requestBody"]["content"]) == {"application/json", "multipart/form-data", "image/png",
                                                   "image/jpeg", "application/octet-stream"}
    ok = post["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/PredictResponse"}
    for status in ("400", "413", "415", "422", "503"):
        assert post["responses"][status]["content"]["application/json"]["schema"]["$ref"].endswith("ErrorResponse")
    request = doc["components"]["schemas"]["PredictRequest"]
    assert {"inputs", "instances", "images"} <= set(request["properties"]) and request["examples"]
    for example in request["examples"]:  # the documented examples are valid requests
        validator(doc, "PredictRequest").validate(example)
    pred = doc["components"]["schemas"]["ClassPrediction"]
    assert "class" in pred["properties"] and "class_" not in pred["properties"]
    assert "/metrics" in doc["paths"] and "/reload" in doc["paths"]


def test_every_json_form_answers_in_the_declared_schema_with_the_same_predictions(api):
    client, images, doc = api["client"], api["images"], api["doc"]
    x = (images.astype(np.float32) / 255).tolist()
    b64 = [base64.b64encode(png(im)).decode() for im in images]
    answers = [client.post("/predict", json=body) for body in
               ({"inputs": x}, {"instances": x}, x, {"images": b64})]
    for r in answers:
        assert r.status_code == 200, r.text
        validator(doc, "PredictResponse").validate(r.json())
        assert "file" not in r.json()["predictions"][0]  # unset fields are left out, not null
    classes = [[p["class"] for p in r.json()["predictions"]] for r in answers]
    assert all(c == classes[0] for c in classes) and set(classes[0]) <= set(api["classes"])
    probs = [[list(p["probabilities"].values()) for p in r.json()["predictions"]] for r in answers]
    np.testing.assert_allclose(probs[3], probs[0], atol=1e-6)  # base64 PNGs = the pixels as numbers
    files = [("files", ("a.png", png(images[0]), "image/png"))]
    r = client.post("/predict", files=files)
    validator(doc, "PredictResponse").validate(r.json())
    assert r.json()["predictions"][0]["file"] == "a.png"


@pytest.mark.parametrize("body, status, words", [
    ({"images": ["not base64!"]}, 422, "images[0]: not base64"),
    ({"images": [base64.b64encode(b"plain text").decode()]}, 415, "images[0]: not a PNG or JPEG"),
    ({"images": []}, 422, "non-empty array of base64"),
    ({"images": "abc"}, 422, "non-empty array of base64"),
    ({"inputs": [[0.5]], "images": ["x"]}, 422, "has inputs and images"),
    ({"data": [1]}, 422, "needs one of 'inputs'"),
])
def test_bad_json_bodies_are_one_line_errors_in_the_declared_schema(api, body, status, words):
    r = api["client"].post("/predict", json=body)
    assert r.status_code == status and words in r.json()["error"], r.text
    validator(api["doc"], "ErrorResponse").validate(r.json())


def test_a_base64_image_of_the_wrong_size_or_too_many_are_refused(api):
    small = base64.b64encode(png(np.zeros((3, 4, 4), np.uint8))).decode()
    r = api["client"].post("/predict", json={"images": [small]})
    assert r.status_code == 422 and "not resized" in r.json()["error"]
    ok = base64.b64encode(png(api["images"][0])).decode()
    assert api["client"].post("/predict", json={"images": [ok] * 17}).status_code == 413  # max_batch=16


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_count_requests_statuses_inputs_and_name_the_model(api):
    client, images = api["client"], api["images"]
    before = samples(client.get("/metrics").text)
    x = (images.astype(np.float32) / 255).tolist()
    assert client.post("/predict", json={"inputs": x}).status_code == 200
    assert client.post("/predict", json={"inputs": x[:2]}).status_code == 200
    assert client.post("/predict", json={"data": 1}).status_code == 422
    assert client.get("/no/such/path").status_code == 404
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    after = samples(r.text)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("cgankd_requests_total", route="/predict", method="POST", status="200") == 2
    assert grew("cgankd_requests_total", route="/predict", method="POST", status="422") == 1
    assert grew("cgankd_requests_total", route="other", method="GET", status="404") == 1  # no path as a label
    assert grew("cgankd_predicted_inputs_total") == len(images) + 2
    assert grew("cgankd_request_duration_seconds_count", route="/predict") == 3
    assert after[("cgankd_model_info", (("name", "student"), ("version", "None")))] == 1
    assert after[("cgankd_requests_in_flight", ())] == 0


def _npy_declaring(shape: tuple[int, ...]) -> bytes:
    """A .npy whose header declares ``shape`` but whose data is 8 bytes."""
    header = np.lib.format.header_data_from_array_1_0(np.zeros(2, np.float32))
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {**header, "shape": shape})
    out.write(np.zeros(2, np.float32).tobytes())
    return out.getvalue()


@pytest.mark.parametrize("body, content_type, status, words", [
    (b"[" + b"9" * 5000 + b"]", "application/json", 400, "Exceeds the limit (4300 digits)"),
    (b"[" + b"9" * 400 + b"]", "application/json", 422, "int too large to convert to float"),
    (_npy_declaring((2**50,)), "application/octet-stream", 422, "header declares shape [1125899906842624]"),
])
def test_hostile_bodies_are_4xx_not_500(api, body, content_type, status, words):
    """What a fuzzer sends: a JSON integer past Python's digit limit, one past float64, a .npy header
    declaring a petabyte. Each is a client error with its reason, never a server error."""
    r = api["client"].post("/predict", content=body, headers={"content-type": content_type})
    assert r.status_code == status and words in r.json()["error"], r.text


def test_invented_methods_are_counted_as_other(api):
    """uvicorn accepts any token as a method: 50 invented ones add one label value, 'other', not 50."""
    client = api["client"]
    for i in range(50):
        client.request(f"X{i}SCAN", "/predict")
    families = samples(client.get("/metrics").text)
    methods = {dict(labels).get("method") for name, labels in families if name == "cgankd_requests_total"}
    assert "other" in methods and not any(m and m.startswith("X") for m in methods), methods
    assert methods <= {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other"}


def test_metadata_names_no_path_run_or_tags(api):
    meta = api["client"].get("/metadata").json()
    assert meta["uri"] == "student.onnx" and meta["name"] == "student"
    assert str(api["path"].parent) not in str(meta) and not {"run_id", "tags"} & set(meta)


def test_json_bodies_have_their_own_limit_and_binary_bodies_do_not(api):
    """A JSON array takes ~20x its size while decoded: over serve.max_json_mb it is a 413 that says what
    to send instead; the same batch as .npy, or as a v2 binary tensor, is served."""
    from cgankd.config.sections import ServeCfg
    from cgankd.serve.app import Holder, create_app
    from cgankd.serve.runtime import load_model

    path = api["path"]
    app = create_app(Holder(load_model(str(path), "cpu"), lambda s: load_model(s, "cpu"), str(path)),
                     ServeCfg(max_body_mb=1.0, max_batch=16, max_json_mb=4096 / (1 << 20), batching=False))
    x = api["images"][:2]
    with TestClient(app) as client:
        r = client.post("/predict", json={"inputs": (x / 255.0).tolist()})
        assert r.status_code == 413 and "over the JSON limit of 4,096" in r.json()["error"], r.text
        buf = io.BytesIO()
        np.save(buf, x)
        assert client.post("/predict", content=buf.getvalue()).status_code == 200
        name = client.get("/metadata").json()["name"]
        meta = client.get(f"/v2/models/{name}").json()
        head = json.dumps({"inputs": [{"name": meta["inputs"][0]["name"], "shape": list(x.shape), "datatype": "UINT8",
                                       "parameters": {"binary_data_size": x.nbytes}}]}).encode()
        r = client.post(f"/v2/models/{name}/infer", content=head + x.tobytes(),
                        headers={"inference-header-content-length": str(len(head))})
        assert r.status_code == 200 and len(r.json()["outputs"]) == 2, r.text
        r = client.post(f"/v2/models/{name}/infer", json={"inputs": [{"name": meta["inputs"][0]["name"],
                        "shape": list(x.shape), "datatype": "UINT8", "data": x.reshape(-1).tolist()}]})
        assert r.status_code == 413, r.text
