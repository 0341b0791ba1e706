"""The HTTP app: ``POST /predict``, ``GET /healthz`` ``/ready`` ``/metadata`` ``/metrics``,
``POST /reload`` (the operator's, with a token: cgankd/serve/management.py), and the Open Inference
Protocol v2 under ``/v2`` (cgankd/serve/v2.py). Its types are in
``/openapi.json`` (cgankd/serve/schema.py); ``/metrics`` is Prometheus' (cgankd/serve/metrics.py).

Requests take the current model at their start; ``/reload`` builds a new session beside it and
swaps the reference, so requests in flight finish on the old one and none is dropped. Inference
runs in the thread pool without a lock (onnxruntime sessions are thread-safe); with ``batching``,
concurrent requests share one call (cgankd/serve/batcher.py).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp

from cgankd.base.errors import CgankdError
from cgankd.config.sections import ServeCfg
from cgankd.serve.batcher import Runner
from cgankd.serve.decode import BadInput, from_json, one_part
from cgankd.serve.limits import JSON_TYPES, BodyDeadline, BodyLimit, InFlightLimit, JsonGate, Refused, media_type
from cgankd.serve.management import Throttle, public_message, reload_target
from cgankd.serve.metrics import Metrics
from cgankd.serve.runtime import ServedModel
from cgankd.serve.schema import PREDICT_BODY, Health, PredictResponse, Ready, Reloaded, errors, request_schemas
from cgankd.serve.v2_routes import InferRequest, add_routes

METRICS_PATH = {"get": {"summary": "Metrics", "description": "Prometheus text format: requests by route and "
                        "status, latency histogram, inputs predicted, requests in flight, the served model "
                        "(cgankd/serve/metrics.py)",
                        "responses": {"200": {"description": "the metrics", "content": {"text/plain": {}}}}}}


class Holder:
    """The current model; swapped whole on reload (readers never see a half-built one)."""

    def __init__(self, model: ServedModel, loader: Callable[[str], ServedModel], source: str) -> None:
        self.model = model
        self.loader = loader
        self.source = source
        self.lock = threading.Lock()  # one reload at a time; predictions never take it
        self.reloads = 0

    def reload(self, source: str) -> ServedModel:
        """Load ``source`` (management.reload_target made it from the served model) and swap it in;
        the started source stays what a later plain /reload re-resolves."""
        with self.lock:
            new = self.loader(source)
            if new.card.shape != self.model.card.shape or new.card.task != self.model.card.task:
                raise BadInput(409, f"{source}: task/input {new.card.task} {list(new.card.shape)} "
                               f"differs from the served {self.model.card.task} {list(self.model.card.shape)}")
            self.model = new
            self.reloads += 1
            return new


async def parse(request: Request, card: Any, max_batch: int, gate: JsonGate) -> tuple[np.ndarray, list[str] | None]:
    """The body -> (batch, file names or None); multipart parts are decoded one by one."""
    ctype = media_type(request.headers.get("content-type", ""))
    if ctype == "multipart/form-data":
        form = await request.form(max_files=max_batch, max_fields=max_batch)
        parts, names = [], []
        for key, value in form.multi_items():
            if hasattr(value, "read"):
                name = value.filename or key
                parts.append(await run_in_threadpool(one_part, await value.read(), card, name, max_batch))
                names.append(name)
        if not parts:
            raise BadInput(422, "multipart: no files (send images or .npy files as file fields)")
        batch = np.concatenate(parts)
        if len(batch) > max_batch:
            raise BadInput(413, f"multipart: {len(batch)} inputs exceed the limit of {max_batch}")
        files = [n for n, p in zip(names, parts, strict=True) for _ in range(len(p))]
        return batch, files
    body = await request.body()
    if not body:
        raise BadInput(422, "body: empty (send PNG/JPEG, .npy, JSON or multipart files)")
    if ctype in JSON_TYPES:  # decoding runs off the event loop: probes stay answered meanwhile
        return await gate.decode(len(body), from_json, body, card, max_batch), None
    return await run_in_threadpool(one_part, body, card, "body", max_batch), None


def megabytes(mb: float) -> int:
    return int(mb * 1024 * 1024)


def create_app(holder: Holder, cfg: ServeCfg, token: str | None = None, hosts: list[str] | None = None) -> ASGIApp:
    """The server's ASGI app, its limits and batching from ``cfg`` (params.yaml ``serve``). ``token``:
    the operator's management token (None: /reload answers 403); ``hosts``: the Host headers answered
    (None: any)."""
    from cgankd import __version__

    app = FastAPI(title="cgankd student", description=__doc__, version=__version__)
    metrics = Metrics(lambda: holder.model.info)
    throttle = Throttle()
    run = Runner(cfg.batching, cfg.batch_max, cfg.batch_wait_ms / 1000)
    run.observe = metrics.call_inputs.observe
    max_body, max_batch = megabytes(cfg.max_body_mb), cfg.max_batch
    gate = JsonGate(min(megabytes(cfg.max_json_mb), max_body))
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts or ["*"])

    @app.exception_handler(BadInput)
    async def bad_input(_: Request, exc: BadInput) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"error": public_message(exc.message)}, status_code=exc.status, headers=headers)

    @app.exception_handler(Refused)
    async def refused(_: Request, exc: Refused) -> JSONResponse:  # a body guard raised while the app read
        return exc.response()

    @app.exception_handler(CgankdError)
    async def bad_source(_: Request, exc: CgankdError) -> JSONResponse:
        return JSONResponse({"error": public_message(str(exc))}, status_code=404)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:  # logged by uvicorn; JSON for the client
        return JSONResponse({"error": public_message(f"internal error: {type(exc).__name__}: {exc}")},
                            status_code=500)

    @app.get("/healthz", response_model=Health)
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/ready", response_model=Ready)
    async def ready() -> dict:
        m = holder.model
        return {"ready": True, "name": m.info.get("name"), "version": m.info.get("version")}

    @app.get("/metadata")
    async def metadata() -> dict[str, Any]:
        """The served model: task, input shape and colour, preprocessing, classes or label range
        and unit, registered name and version, onnxruntime providers, the server's limits."""
        return {**holder.model.metadata(), "reloads": holder.reloads, "max_batch": max_batch,
                "max_body_bytes": max_body}

    @app.post("/predict", response_model=PredictResponse, response_model_exclude_unset=True, openapi_extra=PREDICT_BODY,
              responses=errors(400, 408, 413, 415, 422, 503))
    async def predict(request: Request) -> dict:
        """One prediction per input. Bodies: JSON (``PredictRequest`` or a bare array), a PNG, JPEG
        or .npy file as the raw body, or multipart files (PNG/JPEG/.npy, each answer names its
        file). Inputs must have the model's shape (``/metadata``); nothing is resized."""
        model = holder.model  # this request's model, whatever a reload does meanwhile
        batch, files = await parse(request, model.card, max_batch, gate)
        rows = model.card.postprocess(await run(model, batch))
        metrics.count_inputs(len(rows))
        if files is not None:
            rows = [{"file": f, **r} for f, r in zip(files, rows, strict=True)]
        return {"model": {"name": model.info.get("name"), "version": model.info.get("version")},
                "predictions": rows}

    @app.post("/reload", response_model=Reloaded, responses=errors(401, 403, 404, 409, 429))
    async def reload(request: Request) -> dict:
        """The operator's (``Authorization: Bearer <token>``): reload the source the server started
        with (e.g. the champion alias, which may point to a new version now), or JSON
        ``{"alias": ...}`` / ``{"version": ...}`` of the same registered model."""
        throttle.check(token, request.headers.get("authorization"))
        ctype = media_type(request.headers.get("content-type", ""))
        source = reload_target(holder.source, ctype, await request.body(), dict(request.query_params))
        new = await run_in_threadpool(holder.reload, source)
        return {"reloaded": True, **{k: new.info.get(k) for k in ("name", "version", "alias", "uri")}}

    def openapi() -> dict[str, Any]:  # PredictRequest is parsed by hand: add its schema to the components
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            request_schema = request_schemas()
            schemas.update(request_schema.pop("$defs", {}))
            schemas["PredictRequest"] = request_schema
            v2_request = InferRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(v2_request.pop("$defs", {}))
            schemas["V2InferRequest"] = v2_request
            doc["paths"]["/metrics"] = METRICS_PATH
            app.openapi_schema = doc
        return app.openapi_schema

    add_routes(app, holder, run, max_batch, metrics.count_inputs, gate)
    app.openapi = openapi  # type: ignore[method-assign]
    guarded = BodyDeadline(BodyLimit(app, max_body, gate.max_bytes), cfg.body_timeout_s)
    limited = InFlightLimit(guarded, cfg.max_in_flight)
    return metrics.wrap(limited, lambda: limited.n)


def serve(source: str, cfg: ServeCfg) -> None:
    """Load the model (errors here stop start-up with one line), then run uvicorn with the header
    deadline and the connection limit of ``cfg`` (cgankd/serve/connections.py)."""
    import sys

    import uvicorn

    from cgankd.serve.connections import connection_limits, uvicorn_options
    from cgankd.serve.management import HOW, allowed_hosts, load_token, loopback
    from cgankd.serve.runtime import load_model

    host, port = cfg.host, cfg.port
    token = load_token(cfg.token_file)
    answered = allowed_hosts(host, cfg.allowed_hosts)
    if not loopback(host) and token is None:
        print(f"cgankd serve: warning: listening on {host} beyond this machine; /reload stays off until you {HOW}",
              file=sys.stderr)
    if answered == ["*"]:
        print("cgankd serve: warning: any Host header is answered on a wildcard bind; set serve.allowed_hosts to "
              "the names clients use (docs/serving.md, Exposing the server)", file=sys.stderr)

    def loader(src: str) -> ServedModel:
        return load_model(src, cfg.providers, cfg.threads, cfg.precision, cfg.io_binding)

    model = loader(source)
    cap, backlog, lowered = connection_limits(cfg.max_connections)  # the model loaded: its descriptors counted
    if lowered:
        print(f"cgankd serve: {lowered}", file=sys.stderr)
    print(json.dumps({"serving": model.info.get("uri"), "version": model.info.get("version"),
                      "task": model.card.task, "input": list(model.card.shape),
                      "providers": model.session.get_providers(), "url": f"http://{host}:{port}",
                      "management": "on" if token else "off"}), flush=True)
    app = create_app(Holder(model, loader, source), cfg, token, answered)
    asyncio.run(uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                              **uvicorn_options(cfg.header_timeout_s, cap, backlog))).serve())
