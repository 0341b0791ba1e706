"""What a connection may hold before it sends a request: uvicorn closes idle keep-alive connections
(``timeout_keep_alive``) but gives a request's head no deadline, and any byte trickled in re-arms its
idle timer, so a client that sends one header byte a second holds its socket for ever; enough of them
exhaust the file descriptors. ``HeaderDeadline`` gives each request's head ``serve.header_timeout_s``
from the connection's start (or from the previous response) and then answers 408 and closes.
``serve.max_connections`` bounds connections and requests together (uvicorn's ``limit_concurrency``:
beyond it, 503)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class HeaderDeadline(H11Protocol):
    header_timeout: float = 10.0
    _head: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # the head has arrived (or the connection is closing)
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._arm()  # the next request on this connection gets its own deadline

    def _arm(self) -> None:
        self._disarm()
        self._head = self.loop.call_later(self.header_timeout, self._late)

    def _disarm(self) -> None:
        if self._head is not None:
            self._head.cancel()
            self._head = None

    def _late(self) -> None:
        self._head = None
        if self.transport.is_closing():
            return
        body = json.dumps({"error": f"request head not received within {self.header_timeout:g} s "
                                    "(serve.header_timeout_s)"}).encode()
        self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                             b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        self.transport.close()


def uvicorn_options(header_timeout_s: float, max_connections: int) -> dict[str, Any]:
    """uvicorn.Config's keywords for the two limits."""
    protocol = type("HeaderDeadline", (HeaderDeadline,), {"header_timeout": header_timeout_s})
    return {"http": protocol, "limit_concurrency": max_connections}
