"""What a connection may hold before it sends a request: uvicorn closes idle keep-alive connections
(``timeout_keep_alive``) but gives a request's head no deadline, and any byte trickled in re-arms its
idle timer, so a client that sends one header byte a second holds its socket for ever; enough of them
exhaust the file descriptors. ``HeaderDeadline`` gives each request's head ``serve.header_timeout_s``
from the connection's start (or from the previous response) and then answers 408 and closes.

``serve.max_connections`` bounds the open connections, and never beyond what the file-descriptor limit
(``ulimit -n``) leaves (:func:`connection_limits`): a server that runs out of descriptors stops accepting
anyone, its probes included. A connection over the cap closes the one that has waited longest for its
request head (a trickling client, or an idle keep-alive one, as servers drop those first under
pressure); when every connection is inside a request, uvicorn answers the newcomer 503
(``limit_concurrency``)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from cgankd.base.errors import CgankdError

try:
    import resource
except ImportError:  # Windows: no descriptor limit to read
    resource = None  # type: ignore[assignment]

# descriptors kept free beyond those open at start, the connections and a burst of accepts: the model's
# files on /reload, a registry download, onnxruntime's own
FD_RESERVE = 16
MIN_CONNECTIONS = 8
BACKLOG = 2048  # uvicorn's default listen queue, which is also how many connections asyncio accepts at once


class HeaderDeadline(H11Protocol):
    header_timeout: float = 10.0
    cap: int = 512
    _head: asyncio.TimerHandle | None = None
    _waiting_since: float = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()
        if len(self.connections) > self.cap:
            self._make_room()

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

    def _make_room(self) -> None:
        """Close the connection, other than this one, that has waited longest for a request head; none
        (every other one is inside a request): uvicorn answers this one's request 503."""
        waiting = [c for c in self.connections if isinstance(c, HeaderDeadline) and c is not self
                   and c._head is not None and not c.transport.is_closing()]
        if waiting:
            oldest = min(waiting, key=lambda c: c._waiting_since)
            oldest._disarm()
            oldest.transport.close()

    def _arm(self) -> None:
        self._disarm()
        self._waiting_since = time.monotonic()
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


def open_descriptors() -> int | None:
    """How many file descriptors this process has open (None where /proc or /dev/fd cannot tell)."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(folder))
        except OSError:
            continue
    return None


def connection_limits(max_connections: int) -> tuple[int, int, str | None]:
    """(connections, listen backlog, a line saying what was lowered or None): ``serve.max_connections``
    and :data:`BACKLOG`, lowered to what the soft file-descriptor limit leaves. asyncio accepts up to a
    backlog of connections at once before the server sees any of them, and the same number may be closing
    meanwhile, so the cap keeps two backlogs, :data:`FD_RESERVE` and the descriptors open now below the
    limit. A limit that leaves fewer than :data:`MIN_CONNECTIONS` is an error naming ``ulimit -n``."""
    if resource is None:
        return max_connections, BACKLOG, None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    used = open_descriptors()
    if soft == resource.RLIM_INFINITY or used is None:
        return max_connections, BACKLOG, None
    free = soft - used
    backlog = max(MIN_CONNECTIONS * 2, min(BACKLOG, free // 8))
    room = free - 2 * backlog - FD_RESERVE
    if room < MIN_CONNECTIONS:
        raise CgankdError("serve", f"the file-descriptor limit (ulimit -n {soft}) leaves room for "
                          f"{max(room, 0)} connections ({used} descriptors open): raise it to at least "
                          f"{used + 4 * MIN_CONNECTIONS + FD_RESERVE + MIN_CONNECTIONS}")
    if room >= max_connections and backlog == BACKLOG:
        return max_connections, backlog, None
    cap = min(room, max_connections)
    return cap, backlog, (f"ulimit -n {soft} allows {cap} connections (serve.max_connections {max_connections}) "
                          f"and a listen backlog of {backlog} ({used} descriptors open)")


def uvicorn_options(header_timeout_s: float, cap: int, backlog: int = BACKLOG) -> dict[str, Any]:
    """uvicorn.Config's keywords for the limits (``cap``, ``backlog``: :func:`connection_limits`). uvicorn
    answers 503 when its connections reach ``limit_concurrency``: the cap plus the newcomer, which only
    stays over the cap when no connection waits for a head."""
    protocol = type("HeaderDeadline", (HeaderDeadline,), {"header_timeout": header_timeout_s, "cap": cap})
    return {"http": protocol, "limit_concurrency": cap + 1, "backlog": backlog}
