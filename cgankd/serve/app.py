"""The HTTP app: ``POST /predict``, ``GET /healthz`` ``/ready`` ``/metadata``, ``POST /reload``.

Requests take the current model at their start; ``/reload`` builds a new session beside it and
swaps the reference, so requests in flight finish on the old one and none is dropped. Inference
runs in the thread pool without a lock (onnxruntime sessions are thread-safe).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from cgankd.errors import CgankdError
from cgankd.serve.decode import BadInput, from_json, one_part
from cgankd.serve.limits import BodyDeadline, BodyLimit, InFlightLimit, Refused
from cgankd.serve.runtime import ServedModel

JSON_TYPES = ("application/json", "text/json")


class Holder:
    """The current model; swapped whole on reload (readers never see a half-built one)."""

    def __init__(self, model: ServedModel, loader: Callable[[str], ServedModel], source: str) -> None:
        self.model = model
        self.loader = loader
        self.source = source
        self.lock = threading.Lock()  # one reload at a time; predictions never take it
        self.reloads = 0

    def reload(self, source: str | None) -> ServedModel:
        with self.lock:
            new = self.loader(source or self.source)
            if new.card.shape != self.model.card.shape or new.card.task != self.model.card.task:
                raise BadInput(409, f"{source or self.source}: task/input {new.card.task} {list(new.card.shape)} "
                               f"differs from the served {self.model.card.task} {list(self.model.card.shape)}")
            self.model, self.source = new, source or self.source
            self.reloads += 1
            return new


async def parse(request: Request, card: Any, max_batch: int) -> tuple[np.ndarray, list[str] | None]:
    """The body -> (batch, file names or None); multipart parts are decoded one by one."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        form = await request.form(max_files=max_batch, max_fields=max_batch)
        parts, names = [], []
        for key, value in form.multi_items():
            if hasattr(value, "read"):
                name = value.filename or key
                parts.append(one_part(await value.read(), card, name, max_batch))
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
    if ctype in JSON_TYPES:
        return from_json(body, card, max_batch), None
    return one_part(body, card, "body", max_batch), None


def create_app(holder: Holder, max_body: int, max_batch: int = 1024, max_in_flight: int = 64,
               body_timeout: float = 10.0) -> InFlightLimit:
    app = FastAPI(title="cgankd student", description=__doc__)

    @app.exception_handler(BadInput)
    async def bad_input(_: Request, exc: BadInput) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(Refused)
    async def refused(_: Request, exc: Refused) -> JSONResponse:  # a body guard raised while the app read
        return exc.response()

    @app.exception_handler(CgankdError)
    async def bad_source(_: Request, exc: CgankdError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=404)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:  # logged by uvicorn; JSON for the client
        return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> dict:
        m = holder.model
        return {"ready": True, "name": m.info.get("name"), "version": m.info.get("version")}

    @app.get("/metadata")
    async def metadata() -> dict:
        return {**holder.model.metadata(), "reloads": holder.reloads, "max_batch": max_batch,
                "max_body_bytes": max_body}

    @app.post("/predict")
    async def predict(request: Request) -> dict:
        model = holder.model  # this request's model, whatever a reload does meanwhile
        batch, files = await parse(request, model.card, max_batch)
        rows = await run_in_threadpool(model.predict, batch)
        if files is not None:
            rows = [{"file": f, **r} for f, r in zip(files, rows, strict=True)]
        return {"model": {"name": model.info.get("name"), "version": model.info.get("version")},
                "predictions": rows}

    @app.post("/reload")
    async def reload(model: str | None = None) -> dict:
        """Reload the source the server started with (e.g. the champion alias, which may point to a
        new version now), or ``?model=`` another .onnx path / models:/ URI."""
        new = await run_in_threadpool(holder.reload, model)
        return {"reloaded": True, **{k: new.info.get(k) for k in ("name", "version", "alias", "uri")}}

    return InFlightLimit(BodyDeadline(BodyLimit(app, max_body), body_timeout), max_in_flight)


def serve(source: str, host: str, port: int, max_body: int, max_batch: int, providers: str,
          threads: int | None, max_in_flight: int = 64, body_timeout: float = 10.0) -> None:
    """Load the model (errors here stop start-up with one line), then run uvicorn."""
    import uvicorn

    from cgankd.serve.runtime import load_model

    def loader(src: str) -> ServedModel:
        return load_model(src, providers, threads)

    model = loader(source)
    print(json.dumps({"serving": model.info.get("uri"), "version": model.info.get("version"),
                      "task": model.card.task, "input": list(model.card.shape),
                      "providers": model.session.get_providers(), "url": f"http://{host}:{port}"}), flush=True)
    app = create_app(Holder(model, loader, source), max_body, max_batch, max_in_flight, body_timeout)
    asyncio.run(uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                              access_log=False)).serve())
