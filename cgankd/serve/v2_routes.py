"""The Open Inference Protocol v2 routes (cgankd/serve/v2.py) on the FastAPI app, with their types in
``/openapi.json``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from cgankd.serve import v2
from cgankd.serve.schema import errors


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class Live(BaseModel):
    live: bool


class ReadyV2(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class TensorMetadata(BaseModel):
    name: str
    datatype: str = Field(description="FP32")
    shape: list[int] = Field(description="-1: any batch size")


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class Tensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str = Field(description="FP32 (the model input, in [0, 1]) or UINT8 (pixels)")
    parameters: dict[str, Any] | None = Field(None, description="binary_data_size with the binary extension")
    data: list[Any] | None = Field(None, description="row-major values, flat or nested")


class RequestedOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = Field(None, description="binary_data: true for a binary tensor")


class InferRequest(BaseModel):
    id: str | None = None
    parameters: dict[str, Any] | None = Field(None, description="binary_data_output: true for binary outputs")
    inputs: list[Tensor]
    outputs: list[RequestedOutput] | None = None


class InferResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    outputs: list[Tensor]


INFER_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/V2InferRequest"}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary",
                                            "description": "the binary tensor extension: the JSON header "
                                            "(Inference-Header-Content-Length bytes), then the tensors"}}}}}


def add_routes(app: FastAPI, holder: Any, run: v2.Run, max_batch: int, count_inputs: Any, gate: Any) -> None:
    """``holder.model``: the served model; ``run(model, x)``: its raw outputs (batched or not)."""
    from cgankd import __version__

    @app.get("/v2", response_model=ServerMetadata, tags=["v2"])
    async def server_metadata() -> dict:
        return {"name": "cgankd", "version": __version__, "extensions": ["binary_tensor_data"]}

    @app.get("/v2/health/live", response_model=Live, tags=["v2"])
    async def live() -> dict:
        return {"live": True}

    @app.get("/v2/health/ready", response_model=ReadyV2, tags=["v2"])
    async def ready() -> dict:
        return {"ready": True}

    @app.get("/v2/models/{name}", response_model=ModelMetadata, responses=errors(404), tags=["v2"])
    @app.get("/v2/models/{name}/versions/{version}", response_model=ModelMetadata, responses=errors(404),
             tags=["v2"])
    async def model_metadata(name: str, version: str | None = None) -> dict:
        model = holder.model
        v2.check_model(model, name, version)
        return v2.model_metadata(model)

    @app.get("/v2/models/{name}/ready", response_model=ModelReady, responses=errors(404), tags=["v2"])
    @app.get("/v2/models/{name}/versions/{version}/ready", response_model=ModelReady, responses=errors(404),
             tags=["v2"])
    async def model_ready(name: str, version: str | None = None) -> dict:
        v2.check_model(holder.model, name, version)
        return {"name": name, "ready": True}

    @app.post("/v2/models/{name}/infer", response_model=InferResponse, openapi_extra=INFER_BODY,
              responses=errors(400, 404, 408, 413, 503), tags=["v2"])
    @app.post("/v2/models/{name}/versions/{version}/infer", response_model=InferResponse,
              openapi_extra=INFER_BODY, responses=errors(400, 404, 408, 413, 503), tags=["v2"])
    async def infer(request: Request, name: str, version: str | None = None) -> Response:
        """One input tensor -> the model's outputs (JSON, or the binary tensor extension)."""
        model = holder.model  # this request's model, whatever a reload does meanwhile
        v2.check_model(model, name, version)
        body = await request.body()
        header = request.headers.get(v2.HEADER)
        json_size = int(header) if header is not None and header.isdigit() else len(body)  # the JSON part
        req = await gate.decode(json_size, v2.parse_infer, body, header, model, max_batch)
        raw = await run(model, req.x)
        count_inputs(len(req.x))
        content, headers = v2.infer_response(model, req, raw)
        return Response(content, headers={k: v for k, v in headers.items() if k != "content-type"},
                        media_type=headers["content-type"])
