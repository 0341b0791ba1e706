"""The serving API's types: what ``/openapi.json`` declares, so a client can be generated from it.

``POST /predict`` takes one of four bodies (cgankd/serve/decode.py parses them; the JSON one is
``PredictRequest``): JSON, a raw PNG/JPEG/.npy body, or multipart files. It answers
``PredictResponse``: one prediction per input, a class with its probabilities or a value in the
label's unit. Every refusal is an ``ErrorResponse`` (one line).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

EXAMPLE_PIXELS = [[[0.0, 0.5], [1.0, 0.25]]]  # one 1 x 2 x 2 input: the real shape is in /metadata


class PredictRequest(BaseModel):
    """A JSON body: exactly one of ``inputs`` (alias ``instances``) or ``images``. A bare JSON array
    is read as ``inputs``."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"inputs": [EXAMPLE_PIXELS]},
                                                              {"images": ["iVBORw0KGgo...(base64 PNG)"]}]})

    inputs: list[Any] | None = Field(
        None, description="N x C x H x W (or one C x H x W) numbers in [0, 1]: the model input itself, "
        "pixels divided by /metadata's preprocess.divide_by")
    instances: list[Any] | None = Field(None, description="the same as inputs (TensorFlow Serving's name)")
    images: list[str] | None = Field(
        None, description="base64-encoded PNG or JPEG files of the model's size and colour mode "
        "(nothing is resized or converted)")


class ModelRef(BaseModel):
    name: str | None = Field(None, description="the registered model's (or the ONNX file's) name")
    version: int | None = Field(None, description="the registered version; null for a file")


class ClassPrediction(BaseModel):
    """A classifier's answer for one input."""

    model_config = ConfigDict(populate_by_name=True)

    class_: str = Field(alias="class", description="the most probable class")
    index: int = Field(description="its index in /metadata's classes")
    probabilities: dict[str, float] = Field(description="softmax probability of each class")
    file: str | None = Field(None, description="the multipart file this input came from")


class ValuePrediction(BaseModel):
    """A regressor's answer for one input."""

    value: float = Field(description="the predicted label, in the label's unit")
    unit: str = Field(description="the label's unit (e.g. degrees)")
    file: str | None = Field(None, description="the multipart file this input came from")


class PredictResponse(BaseModel):
    model: ModelRef
    predictions: list[ClassPrediction | ValuePrediction] = Field(description="one per input, in order")


class ErrorResponse(BaseModel):
    error: str = Field(description="what was wrong, in one line")


class Health(BaseModel):
    status: str = "ok"


class Ready(BaseModel):
    ready: bool
    name: str | None = None
    version: int | None = None


class Reloaded(BaseModel):
    reloaded: bool
    name: str | None = None
    version: int | None = None
    alias: str | None = None
    uri: str | None = None


ERRORS = {
    400: "invalid JSON", 401: "no or wrong management token", 403: "management is off",
    404: "the model source does not exist", 408: "the body arrived too slowly",
    409: "a reload target with another task or input shape", 413: "body or batch over the limit",
    415: "not a PNG, JPEG, .npy or JSON body", 422: "a well-formed body the model cannot take (shape, "
    "size, colour mode, dtype, range, NaN)", 429: "too many wrong tokens of late",
    503: "too many requests in flight",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error responses of a route, for its OpenAPI entry."""
    return {c: {"model": ErrorResponse, "description": ERRORS[c]} for c in codes}


BINARY = {"schema": {"type": "string", "format": "binary"}}
PREDICT_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"anyOf": [{"$ref": "#/components/schemas/PredictRequest"},
                                              {"type": "array", "items": {}}]}},
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                  "description": "PNG/JPEG images or .npy arrays; each answer carries its file's name"}}}},
    "image/png": BINARY, "image/jpeg": BINARY,
    "application/octet-stream": {**BINARY, "description": "a .npy array (N x C x H x W uint8 pixels or "
                                 "floats in [0, 1]), a PNG or a JPEG, told apart by content"},
}}}


def request_schemas() -> dict[str, Any]:
    """PredictRequest's JSON schema for components/schemas (the route parses the body itself)."""
    return PredictRequest.model_json_schema(ref_template="#/components/schemas/{model}")
