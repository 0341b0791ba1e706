"""``GET /metrics``: the server's counters in the Prometheus text format (prometheus-client).

The outermost ASGI layer: it times and counts every answer, the limits' refusals (413, 408, 503)
included, and answers ``/metrics`` itself, so a scrape is never refused for load. Each app has its
own registry (no process-global state). Paths are labelled by route; anything else is "other", so
a scanner cannot grow the label set. Like ``/metadata``, it tells traffic and the model's version,
not inputs or predictions.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

ROUTES = ("/predict", "/healthz", "/ready", "/metadata", "/reload", "/metrics", "/docs", "/openapi.json")
# the v2 routes by template (a model name or version in the path never becomes a label value)
V2 = re.compile(r"^/v2(?:/models/[^/]+(?:/versions/[^/]+)?(/ready|/infer)?|/health/(live|ready))?$")
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


# the request methods labelled by name; any other token (uvicorn accepts all) is counted as "other", so
# a scanner cannot grow the label set
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


def route_of(path: str) -> str:
    """The label of ``path``: a fixed route, a v2 route's template, or "other"."""
    if path in ROUTES:
        return path
    m = V2.match(path)
    if m is None:
        return "other"
    if m.group(2):
        return f"/v2/health/{m.group(2)}"
    return "/v2" if path == "/v2" else f"/v2/models/{{name}}{m.group(1) or ''}"


class Metrics:
    """ASGI middleware around ``app`` (set by ``wrap``); ``model`` returns the served model's info
    (name, version) at scrape time."""

    def __init__(self, model: Callable[[], dict[str, Any]]) -> None:
        self.app: Any = None
        self.model = model
        self.registry = r = CollectorRegistry()
        self.requests = Counter("cgankd_requests", "HTTP requests answered, by route, method and status",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("cgankd_request_duration_seconds", "time from request to the end of its answer",
                                 ["route"], buckets=BUCKETS, registry=r)
        self.inputs = Counter("cgankd_predicted_inputs", "inputs predicted (a batch counts each)", registry=r)
        self.loaded = Gauge("cgankd_model_info", "the served model (value 1)", ["name", "version"], registry=r)
        self.call_inputs = Histogram("cgankd_model_call_inputs", "inputs per onnxruntime call (dynamic batching "
                                     "gathers several requests into one)", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256,
                                                                                     512, 1024), registry=r)
        self.busy = Gauge("cgankd_requests_in_flight", "requests being answered", registry=r)

    def wrap(self, app: Any, in_flight: Callable[[], int]) -> Metrics:
        self.app = app
        self.busy.set_function(in_flight)
        return self

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = route_of(scope["path"])
        status = 500  # if the app raises before answering

        async def seen(msg: dict) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
            await send(msg)

        t0 = time.perf_counter()
        try:
            if route == "/metrics" and scope["method"] == "GET":
                await self.scrape(seen)
            else:
                await self.app(scope, receive, seen)
        finally:
            self.latency.labels(route).observe(time.perf_counter() - t0)
            method = scope["method"] if scope["method"] in METHODS else "other"  # a client invents any token
            self.requests.labels(route, method, str(status)).inc()

    def count_inputs(self, n: int) -> None:
        self.inputs.inc(n)

    async def scrape(self, send: Callable) -> None:
        info = self.model()
        self.loaded.clear()
        self.loaded.labels(str(info.get("name")), str(info.get("version"))).set(1)
        body = generate_latest(self.registry)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", CONTENT_TYPE_LATEST.encode()),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
