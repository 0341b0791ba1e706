"""ASGI guards in front of the app: a bound on requests in flight, a size limit and a deadline
for a body.

- Over ``max_in_flight`` requests at once, a request gets 503 with ``Retry-After`` at once instead
  of joining a queue that grows without limit (health probes are never refused). A request counts
  from its body's first byte, so heads without bodies hold no slot.
- A client must send its whole body within ``body_timeout`` seconds of starting the request; one
  that trickles it byte by byte gets 408 and its slot back. Each connection is its own task on the
  event loop, so a slow client never blocks the others meanwhile.
- A body over ``max_bytes`` gets 413, by Content-Length or while streaming.
- A JSON body has its own, smaller limit (by Content-Length or while streaming, before it is
  buffered), and only a few are decoded at once (``JsonGate``): an array of numbers takes about 20
  times its size as Python objects while it is read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from cgankd.serve.decode import BadInput
from cgankd.serve.v2 import HEADER

PROBES = ("/healthz", "/ready", "/v2/health/live", "/v2/health/ready")


class InFlightLimit:
    """Counts a request in flight from its body's first byte (at once when it has no body): sockets
    that send a head and then no body hold no slot, so they cannot deny everyone else; the body
    deadline closes them."""

    def __init__(self, app: Any, max_in_flight: int, retry_after: int = 1) -> None:
        self.app = app
        self.max = max_in_flight
        self.retry_after = retry_after
        self.n = 0  # one event loop: no lock needed

    def busy(self) -> Refused:
        return Refused(f"busy: {self.n} requests in flight (serve.max_in_flight={self.max}); retry after "
                       f"{self.retry_after} s", 503, {"Retry-After": str(self.retry_after)})

    def take(self) -> None:
        if self.n >= self.max:
            raise self.busy()
        self.n += 1

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["path"] in PROBES:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length", b"0")
        counted = not (headers.get(b"transfer-encoding") or (length.isdigit() and int(length) > 0))
        if counted:
            try:
                self.take()
            except Refused as exc:
                await exc.response()(scope, receive, send)
                return

        async def first_byte() -> dict:
            nonlocal counted
            msg = await receive()
            if not counted and msg["type"] == "http.request":
                self.take()  # raises Refused: the guards and the app answer it
                counted = True
            return msg

        try:
            await self.app(scope, first_byte, send)
        except ClientDisconnect:
            pass  # the client left before its body came: nobody to answer, nothing to log
        finally:
            if counted:
                self.n -= 1


class JsonGate:
    """JSON bodies: at most ``max_bytes`` (413 beyond), at most ``slots`` decoded at once (the others
    wait their turn), so the memory JSON decoding holds stays near ``slots x 20 x max_bytes``."""

    def __init__(self, max_bytes: int, slots: int = 2) -> None:
        self.max_bytes = max_bytes
        self.slots = asyncio.Semaphore(slots)

    async def decode(self, size: int, fn: Callable[..., Any], *args: Any) -> Any:
        if size > self.max_bytes:
            raise BadInput(413, f"body: {size:,} bytes of JSON, over the JSON limit of {self.max_bytes:,} "
                           "(serve.max_json_mb); send a .npy body or binary tensors for large batches")
        async with self.slots:
            return await run_in_threadpool(fn, *args)


class Refused(Exception):
    """A request refused while its body is read; carries the answer (the app's exception handler
    sends it too, when the app was the one reading)."""

    def __init__(self, message: str, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers

    def response(self) -> JSONResponse:
        return JSONResponse({"error": str(self)}, status_code=self.status, headers=self.headers)


class BodyGuard:
    """ASGI middleware that watches each request's body: ``check`` (before the app runs) and
    ``reader`` (wrapping ``receive`` as the app reads) raise :class:`Refused`; the refusal is
    answered unless a response started."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def check(self, scope: dict) -> None:
        """Refuse by the headers alone."""

    def reader(self, scope: dict, receive: Callable) -> Callable:
        raise NotImplementedError

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(msg: dict) -> None:
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            self.check(scope)
            await self.app(scope, self.reader(scope, receive), tracked)
        except Refused as exc:
            if not started:
                await exc.response()(scope, receive, send)


JSON_TYPES = ("application/json", "text/json")
V2_JSON_PART = HEADER.encode()  # Open Inference Protocol's binary tensors: JSON, then bytes


def media_type(content_type: str) -> str:
    """A Content-Type header's media type, without its parameters, in lower case."""
    return content_type.split(";")[0].strip().lower()


class BodyLimit(BodyGuard):
    """``max_bytes`` for a body, ``json_bytes`` for a JSON one (a v2 request's JSON part: its
    ``Inference-Header-Content-Length``), by the headers or while the body streams in."""

    def __init__(self, app: Any, max_bytes: int, json_bytes: int | None = None) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes
        self.json_bytes = max_bytes if json_bytes is None else min(json_bytes, max_bytes)

    def is_json(self, headers: dict[bytes, bytes]) -> bool:
        ctype = media_type(headers.get(b"content-type", b"").decode("latin-1"))
        return ctype in JSON_TYPES and V2_JSON_PART not in headers

    def refused(self, size: int | None, json: bool) -> Refused:
        """413; ``size``: the declared size (None: the streamed body passed the limit)."""
        what = ("JSON " if json else "") + (f"({size:,} bytes) " if size is not None else "")
        if json:
            return Refused(f"body: {what}over the JSON limit of {self.json_bytes:,} (serve.max_json_mb); "
                           "send a .npy body or binary tensors for large batches", 413)
        return Refused(f"body: {what}over the limit of {self.max_bytes:,} bytes (serve.max_body_mb)", 413)

    def check(self, scope: dict) -> None:
        headers = dict(scope["headers"])
        json = self.is_json(headers)
        length, json_part = headers.get(b"content-length", b""), headers.get(V2_JSON_PART, b"")
        if length.isdigit() and int(length) > (self.json_bytes if json else self.max_bytes):
            raise self.refused(int(length), json)
        if json_part.isdigit() and int(json_part) > self.json_bytes:
            raise self.refused(int(json_part), True)

    def reader(self, scope: dict, receive: Callable) -> Callable:
        json = self.is_json(dict(scope["headers"]))
        limit, seen = self.json_bytes if json else self.max_bytes, 0

        async def counted() -> dict:
            nonlocal seen
            msg = await receive()
            seen += len(msg.get("body", b""))
            if seen > limit:
                raise self.refused(None, json)
            return msg

        return counted


class BodyDeadline(BodyGuard):
    def __init__(self, app: Any, timeout: float) -> None:
        super().__init__(app)
        self.timeout = timeout

    def reader(self, scope: dict, receive: Callable) -> Callable:
        deadline = time.monotonic() + self.timeout
        done = False

        async def timed() -> dict:
            nonlocal done
            if done:  # the body is in: later receives wait for a disconnect, with no deadline
                return await receive()
            try:
                msg = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.0))
            except TimeoutError:
                raise Refused(f"body: not received within {self.timeout:g} s (serve.body_timeout_s)", 408,
                              {"Connection": "close"}) from None
            done = msg["type"] != "http.request" or not msg.get("more_body", False)
            return msg

        return timed
