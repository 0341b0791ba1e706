"""The Open Inference Protocol v2 (KServe v2, Triton's HTTP/REST API) on ``cgankd serve``, beside
``/predict``: a KServe, Triton or any v2 client talks to a student as to any platform's model.

- ``GET /v2``, ``/v2/health/live``, ``/v2/health/ready``: the server.
- ``GET /v2/models/{name}[/versions/{v}]``: the model's metadata (input ``FP32 [-1, C, H, W]``
  and its outputs); ``.../ready``: whether it is served.
- ``POST /v2/models/{name}[/versions/{v}]/infer``: one input tensor, FP32 (the model input, in
  [0, 1]) or UINT8 (pixels, divided as in training), as JSON ``data`` (flat or nested) or with the
  binary tensor extension (``Inference-Header-Content-Length``, ``binary_data_size``). Outputs:
  ``logits`` and ``probabilities`` FP32 ``[N, K]`` (classification), ``value`` FP32 ``[N]`` in the
  label's unit (regression), as JSON or binary (``binary_data`` / ``binary_data_output``).

``{name}`` is the served model's name (``/metadata``), ``{v}`` its registered version; another is a
404. Every refusal is ``{"error": ...}`` with a 4xx that names what is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from cgankd.serve.card import probabilities, values
from cgankd.serve.decode import BadInput, array
from cgankd.serve.runtime import ServedModel
from cgankd.task import task_of

HEADER = "inference-header-content-length"
DATATYPES = {"FP32": np.dtype("<f4"), "UINT8": np.dtype("u1")}
PLATFORM = "onnxruntime_onnx"


def outputs_of(model: ServedModel) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Output name -> raw model outputs (N x K) to that output's FP32 tensor."""
    if task_of(model.card.task).categorical:
        return {"logits": lambda z: z.astype(np.float32),
                "probabilities": lambda z: probabilities(z).astype(np.float32)}
    return {"value": lambda z: values(z, model.card.post).astype(np.float32)}


def model_metadata(model: ServedModel) -> dict[str, Any]:
    n_out = len(model.card.post.get("classes", [])) or 1
    shapes = {"logits": [-1, n_out], "probabilities": [-1, n_out], "value": [-1]}
    version = model.info.get("version")
    return {"name": model.info.get("name"), "versions": [str(version)] if version is not None else [],
            "platform": PLATFORM,
            "inputs": [{"name": model.input_name, "datatype": "FP32", "shape": [-1, *model.card.shape]}],
            "outputs": [{"name": k, "datatype": "FP32", "shape": shapes[k]} for k in outputs_of(model)]}


def check_model(model: ServedModel, name: str, version: str | None) -> None:
    """404 unless ``name`` (and ``version``, when given) is the served model."""
    served, served_v = model.info.get("name"), model.info.get("version")
    if name != served:
        raise BadInput(404, f"model {name[:100]!r} is not served here; this server serves {served!r}")
    if version is not None and version != str(served_v):
        raise BadInput(404, f"model {name[:100]!r} version {version[:40]!r} is not served here; the served version is "
                       f"{served_v if served_v is not None else '(a file, no version)'}")


@dataclass
class InferRequest:
    x: np.ndarray  # float32 N x C x H x W in [0, 1]
    id: str | None
    outputs: list[tuple[str, bool]]  # (name, binary)


def _header(body: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    if header_length is not None:
        try:
            n = int(header_length)
        except ValueError:
            raise BadInput(400, f"Inference-Header-Content-Length: not an integer ({header_length[:40]!r})") from None
        if not 0 < n <= len(body):
            raise BadInput(400, f"Inference-Header-Content-Length: {n} outside the body's {len(body)} bytes")
        head, tail = body[:n], body[n:]
    else:
        head, tail = body, b""
    try:
        obj = json.loads(head)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(400, f"body: invalid JSON ({str(exc).splitlines()[0][:200]})") from exc
    except RecursionError:
        raise BadInput(400, "body: JSON nested too deeply") from None
    if not isinstance(obj, dict):
        raise BadInput(400, "body: expected a JSON object with 'inputs'")
    return obj, tail


def _tensor(spec: Any, model: ServedModel, tail: bytes, max_batch: int) -> np.ndarray:
    if not isinstance(spec, dict):
        raise BadInput(400, "inputs[0]: expected an object with name, shape, datatype and data")
    if spec.get("name") != model.input_name:
        raise BadInput(400, f"inputs[0].name: {spec.get('name')!r}; the model's input is {model.input_name!r}")
    dtype = DATATYPES.get(spec.get("datatype"))
    if dtype is None:
        raise BadInput(400, f"inputs[0].datatype: {spec.get('datatype')!r}; send FP32 (in [0, 1]) or UINT8 (pixels)")
    shape = spec.get("shape")
    want = ", ".join(map(str, model.card.shape))
    if not (isinstance(shape, list) and len(shape) == 4 and all(type(d) is int and d >= 0 for d in shape)):
        raise BadInput(400, f"inputs[0].shape: {str(shape)[:80]}; expected [N, {want}]")
    if tuple(shape[1:]) != model.card.shape:
        raise BadInput(400, f"inputs[0].shape: {shape}; the model takes [N, {want}]")
    if not 0 < shape[0] <= max_batch:
        raise BadInput(413 if shape[0] else 400, f"inputs[0].shape: batch of {shape[0]}; 1 to {max_batch} inputs")
    count = int(np.prod(shape))
    size = (spec.get("parameters") or {}).get("binary_data_size")
    if size is not None:
        if size != count * dtype.itemsize or len(tail) != size:
            raise BadInput(400, f"inputs[0]: binary_data_size {size} and {len(tail)} bytes after the header; "
                           f"{shape} {spec['datatype']} is {count * dtype.itemsize} bytes")
        flat = np.frombuffer(tail, dtype=dtype)
    else:
        if "data" not in spec:
            raise BadInput(400, "inputs[0]: no data (JSON 'data', or binary_data_size with the binary extension)")
        try:
            flat = np.asarray(spec["data"], dtype=np.float64).reshape(-1)
        except (ValueError, TypeError, OverflowError) as exc:
            raise BadInput(400, f"inputs[0].data: not an array of numbers ({str(exc).splitlines()[0][:120]})") from exc
        except RecursionError:
            raise BadInput(400, "inputs[0].data: nested too deeply") from None
        if flat.size != count:
            raise BadInput(400, f"inputs[0].data: {flat.size} values; shape {shape} needs {count}")
        if dtype == np.uint8:
            if not (np.all(flat == np.round(flat)) and flat.min() >= 0 and flat.max() <= 255):
                raise BadInput(400, "inputs[0].data: UINT8 values must be integers in 0..255")
        flat = flat.astype(dtype)
    return array(flat.reshape(shape), model.card, "inputs[0]", max_batch)


def parse_infer(body: bytes, header_length: str | None, model: ServedModel, max_batch: int) -> InferRequest:
    obj, tail = _header(body, header_length)
    inputs = obj.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1:
        raise BadInput(400, f"inputs: expected one tensor (the model has one input, {model.input_name!r})")
    x = _tensor(inputs[0], model, tail, max_batch)
    known = outputs_of(model)
    params = obj.get("parameters") or {}
    binary_all = bool(params.get("binary_data_output", False)) if isinstance(params, dict) else False
    asked = obj.get("outputs")
    if asked is None:
        outs = [(k, binary_all) for k in known]
    else:
        if not isinstance(asked, list) or not all(isinstance(o, dict) for o in asked):
            raise BadInput(400, "outputs: expected a list of objects with a name")
        outs = []
        for o in asked:
            if o.get("name") not in known:
                raise BadInput(400, f"outputs: {str(o.get('name'))[:60]!r} is not an output; the model has "
                               f"{', '.join(known)}")
            outs.append((o["name"], bool((o.get("parameters") or {}).get("binary_data", binary_all))))
    rid = obj.get("id")
    return InferRequest(x, str(rid)[:256] if rid is not None else None, outs)


def infer_response(model: ServedModel, req: InferRequest, raw: np.ndarray) -> tuple[bytes, dict[str, str]]:
    """The response body and headers: JSON, or JSON + binary tensors (the binary extension)."""
    known = outputs_of(model)
    head: dict[str, Any] = {"model_name": model.info.get("name"),
                            "model_version": str(model.info.get("version") or ""), "outputs": []}
    if req.id is not None:
        head["id"] = req.id
    blobs = []
    for name, binary in req.outputs:
        t = np.ascontiguousarray(known[name](raw), dtype="<f4")
        out: dict[str, Any] = {"name": name, "datatype": "FP32", "shape": list(t.shape)}
        if binary:
            blobs.append(t.tobytes())
            out["parameters"] = {"binary_data_size": len(blobs[-1])}
        else:
            out["data"] = t.reshape(-1).tolist()
        head["outputs"].append(out)
    text = json.dumps(head, separators=(",", ":")).encode()
    if not blobs:
        return text, {"content-type": "application/json"}
    return text + b"".join(blobs), {"content-type": "application/octet-stream", HEADER: str(len(text))}


Run = Callable[[ServedModel, np.ndarray], Awaitable[np.ndarray]]
