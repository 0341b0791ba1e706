"""ASGI guards in front of the app: a bound on requests in flight, and a deadline for a body.

- Over ``max_in_flight`` requests at once, a request gets 503 with ``Retry-After`` at once instead
  of joining a queue that grows without limit (health probes are never refused).
- A client must send its whole body within ``body_timeout`` seconds of starting the request; one
  that trickles it byte by byte gets 408 and its slot back. Each connection is its own task on the
  event loop, so a slow client never blocks the others meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from fastapi.responses import JSONResponse

PROBES = ("/healthz", "/ready")


class InFlightLimit:
    def __init__(self, app: Any, max_in_flight: int, retry_after: int = 1) -> None:
        self.app = app
        self.max = max_in_flight
        self.retry_after = retry_after
        self.n = 0  # one event loop: no lock needed
        self.refused = 0

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["path"] in PROBES:
            await self.app(scope, receive, send)
            return
        if self.n >= self.max:
            self.refused += 1
            body = {"error": f"busy: {self.n} requests in flight (serve.max_in_flight={self.max}); "
                             f"retry after {self.retry_after} s"}
            await JSONResponse(body, status_code=503, headers={"Retry-After": str(self.retry_after)})(
                scope, receive, send)
            return
        self.n += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.n -= 1


class BodyTimeout(Exception):
    pass


class BodyDeadline:
    def __init__(self, app: Any, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = time.monotonic() + self.timeout
        started = False
        done = False

        async def timed() -> dict:
            nonlocal done
            if done:  # the body is in: later receives wait for a disconnect, with no deadline
                return await receive()
            try:
                msg = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.0))
            except TimeoutError:
                raise BodyTimeout from None
            done = msg["type"] != "http.request" or not msg.get("more_body", False)
            return msg

        async def tracked(msg: dict) -> None:
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, timed, tracked)
        except BodyTimeout:
            if not started:
                msg = f"body: not received within {self.timeout:g} s (serve.body_timeout_s)"
                await JSONResponse({"error": msg}, status_code=408, headers={"Connection": "close"})(
                    scope, receive, send)
