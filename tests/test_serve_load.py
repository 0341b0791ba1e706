"""`cgankd serve` under the loads of docs/reliability.md's probes, as a real process, each on a fresh
server so that its peak memory is its own: 5,000 invented request methods, 120 clients trickling their
request heads under ``ulimit -n 128``, and 40 concurrent 16 MB JSON bodies (and 6 at the JSON limit)."""

from __future__ import annotations

import http.client
import os
import re
import select
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import httpx
import pytest
from test_serve_limits import student  # noqa: F401 (the module's fixture: one small exported student)

from cgankd.serve.process import start_server, stop_server

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads the server's /proc entries")


def memory_kb(pid: int, field: str) -> int:
    """VmRSS (resident now) or VmHWM (its peak) of process ``pid``, in kB."""
    status = open(f"/proc/{pid}/status").read()
    return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.M).group(1))


def test_5000_invented_methods_leave_at_most_10_method_labels_and_little_memory(student):  # noqa: F811
    path, _ = student
    proc, url = start_server(str(path))
    try:
        conn = http.client.HTTPConnection("127.0.0.1", urlparse(url).port, timeout=10)
        for _ in range(200):  # warm: every route and allocation a request needs
            conn.request("GET", "/healthz")
            conn.getresponse().read()
        before = memory_kb(proc.pid, "VmRSS")
        for i in range(5000):  # uvicorn accepts any token as a method: each a new one
            conn.request(f"X{i:04d}", "/healthz")
            answer = conn.getresponse()
            answer.read()
            assert answer.status == 405, answer.status
        grown = memory_kb(proc.pid, "VmRSS") - before
        scrape = httpx.get(f"{url}/metrics", timeout=10).text
    finally:
        stop_server(proc)
    methods = set(re.findall(r'method="([^"]*)"', scrape))
    assert "other" in methods and len(methods) <= 10, methods
    assert grown < 20 * 1024, f"{grown} kB"
    print(f"{len(methods)} method labels, resident memory {grown / 1024:+.1f} MB")


def drip(port: int, n: int, gap: float, stop: threading.Event, counts: dict) -> None:
    """Open ``n`` connections, each trickling a request head, a byte every ``gap`` s, until ``stop``;
    ``counts``: how many are open and how many the server closed."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Drip: ")
        socks.append(s)
        counts["open"] = len(socks)
    try:
        while not stop.wait(gap):
            for s in select.select(socks, [], [], 0)[0]:  # readable: the server's close (or an answer)
                socks.remove(s)
                s.close()
                counts["closed"] = counts.get("closed", 0) + 1
            for s in socks:
                s.sendall(b"a")
    finally:
        for s in socks:
            s.close()


def test_120_trickled_heads_under_ulimit_128_leave_healthz_answered_within_a_second(student, tmp_path):  # noqa: F811
    """uvicorn accepts until the descriptors run out, then accepts nobody for a second at a time; the server
    caps its connections and its accept queue below the limit, and closes the connection that has waited
    longest for its head to make room for a new one."""
    path, _ = student
    wrapper = tmp_path / "python"
    wrapper.write_text(f"#!/bin/sh\nulimit -n 128\nexec {sys.executable} \"$@\"\n")
    wrapper.chmod(0o700)
    proc, url = start_server(str(path), "-S", "serve.header_timeout_s=30", python=str(wrapper))
    stop, counts = threading.Event(), {}
    dripper = threading.Thread(target=drip, args=(urlparse(url).port, 120, 0.2, stop, counts), daemon=True)
    try:
        dripper.start()
        deadline = time.monotonic() + 30
        while counts.get("open") != 120 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # every connection has trickled a few bytes
        waits = []
        for _ in range(5):
            t0 = time.monotonic()
            assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
            waits.append(time.monotonic() - t0)
            time.sleep(0.2)
        descriptors = len(os.listdir(f"/proc/{proc.pid}/fd"))
    finally:
        stop.set()
        dripper.join(10)
        stop_server(proc)
    log = proc.stdout.read()
    cap = int(re.search(r"ulimit -n 128 allows (\d+) connections", log).group(1))
    assert max(waits) < 1.0, waits
    assert descriptors < 128 and counts.get("closed", 0) >= 120 - cap, (descriptors, counts, cap)
    assert "Too many open files" not in log, log[-2000:]
    print(f"{cap} connections kept, {counts.get('closed')} closed, /healthz in {max(waits) * 1000:.0f} ms at most")


def post_json(url: str, size: int, chunked: bool) -> str:
    """POST ``size`` bytes of ``[[],[],...]`` (as a stream without Content-Length when ``chunked``);
    the status, or the error when the server closed the connection before the body was sent."""
    body = b"[" + b"[]," * ((size - 3) // 3) + b"[]]"
    content = (body[i:i + 1 << 20] for i in range(0, len(body), 1 << 20)) if chunked else body
    try:
        return str(httpx.post(f"{url}/predict", content=content, timeout=120,
                              headers={"content-type": "application/json"}).status_code)
    except httpx.TransportError as exc:  # refused from its head, the rest of the body unsent
        return type(exc).__name__


def test_40_concurrent_16_mb_json_bodies_keep_the_servers_peak_memory_under_2_gb(student):  # noqa: F811
    path, _ = student
    proc, url = start_server(str(path))
    try:
        base = memory_kb(proc.pid, "VmHWM")
        with ThreadPoolExecutor(40) as pool:
            big = list(pool.map(lambda i: post_json(url, 16 << 20, chunked=i % 2 == 1), range(40)))
            # bodies just under the JSON limit are decoded, two at a time (serve/limits.py JsonGate)
            at_limit = list(pool.map(lambda i: post_json(url, (4 << 20) - 64, chunked=False), range(6)))
        peak = memory_kb(proc.pid, "VmHWM")
        healthy = httpx.get(f"{url}/healthz", timeout=10).status_code
    finally:
        stop_server(proc)
    assert set(big) <= {"413", "WriteError", "RemoteProtocolError", "ReadError"} and "413" in big, big
    assert set(at_limit) == {"422"}, at_limit  # decoded: not an image batch
    assert healthy == 200
    assert peak < 2 << 20, f"peak {peak / 1024:.0f} MB (from {base / 1024:.0f} MB)"
    print(f"server peak RSS {base / 1024:.0f} -> {peak / 1024:.0f} MB")
