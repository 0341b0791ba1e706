"""`cgankd serve` under abuse, as a real process: a bound on requests in flight (503 with
Retry-After, never a queue without limit, probes always answered; a request counts from its body's
first byte) and a deadline for a body trickled byte by byte (408), while other clients are served
meanwhile."""

from __future__ import annotations

import select
import socket
import threading
import time
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest
from conftest import shrunk
from kit.onnx_student import export, trained_student

from cgankd.serve.process import start_server, stop_server


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    from cgankd.stages.prepare import build

    tmp = tmp_path_factory.mktemp("limits")
    data = build(shrunk(tmp / "artifacts"))
    inputs = {"inputs": (data["test"].images[:4].astype(np.float32) / 255.0).tolist()}
    return export(trained_student(data, steps=10), data, tmp / "student.onnx"), inputs


def trickle(url: str, gap: float, out: dict) -> None:
    """POST a 1000-byte body one byte per ``gap`` s until the server answers; keep its answer."""
    port = urlparse(url).port
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\n\r\n[")
        out["started"] = True
        for _ in range(999):
            if select.select([s], [], [], gap)[0]:
                break
            s.sendall(b" ")
        out["at"] = time.monotonic()
        s.settimeout(10)
        answer = b""
        while chunk := s.recv(65536):  # to the close: the head and the body may come in separate reads
            answer += chunk
        out["answer"] = answer.decode(errors="replace")


def wait_until(cond, what: str, limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_a_slow_body_holds_the_only_slot_others_get_503_then_it_gets_408(student):
    path, images = student
    proc, url = start_server(str(path), "-S", "serve.max_in_flight=1", "-S", "serve.body_timeout_s=3",
                             "--threads", "1")
    try:
        slow: dict = {}
        t = threading.Thread(target=trickle, args=(url, 0.1, slow))
        t.start()
        wait_until(lambda: slow.get("started"), "the slow client did not connect")
        time.sleep(0.5)  # its request is in the app, reading the body
        busy = httpx.post(f"{url}/predict", json=images, timeout=30)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1", busy.text
        assert "serve.max_in_flight=1" in busy.json()["error"]
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200  # probes are never refused
        scrape = httpx.get(f"{url}/metrics", timeout=5)  # nor are scrapes, and they count the refusal
        assert scrape.status_code == 200, scrape.text
        assert 'cgankd_requests_total{method="POST",route="/predict",status="503"} 1.0' in scrape.text
        assert "cgankd_requests_in_flight 1.0" in scrape.text  # the slow body
        t.join(60)
        assert slow["answer"].startswith("HTTP/1.1 408"), slow["answer"][:200]
        assert "serve.body_timeout_s" in slow["answer"]
        ok = httpx.post(f"{url}/predict", json=images, timeout=30)
        assert ok.status_code == 200 and len(ok.json()["predictions"]) == 4  # the slot is back
        assert 'route="/predict",status="408"} 1.0' in httpx.get(f"{url}/metrics", timeout=5).text
    finally:
        stop_server(proc)


def test_stalled_bodies_hold_no_slot_and_a_normal_client_is_served(student):
    """Heads that announce a body and never send it (64 of them against 8 slots) count nowhere: a request
    is in flight from its body's first byte. A normal client is served meanwhile; the stalled ones get
    408 at the body deadline."""
    path, images = student
    proc, url = start_server(str(path), "-S", "serve.max_in_flight=8", "-S", "serve.body_timeout_s=3",
                             "--threads", "1")
    port = urlparse(url).port
    stalled = []
    try:
        for _ in range(64):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1000\r\n\r\n")
            stalled.append(s)
        time.sleep(1.0)  # every head is in the app, waiting for its body
        ok = httpx.post(f"{url}/predict", json=images, timeout=30)
        assert ok.status_code == 200, ok.text
        assert "cgankd_requests_in_flight 0.0" in httpx.get(f"{url}/metrics", timeout=5).text
        for s in stalled[1:]:  # 63 clients leave in the middle of their request
            s.close()
        stalled[0].settimeout(15)
        assert stalled[0].recv(65536).startswith(b"HTTP/1.1 408")
    finally:
        for s in stalled:
            s.close()
        stop_server(proc)
    # a client that left logs no error, and SIGTERM stops the server without the SIGKILL stop_server sends
    # after 20 s (an unanswered disconnect used to hold uvicorn's graceful shutdown)
    assert proc.returncode != -9
    assert "Exception in ASGI application" not in proc.stdout.read()


def test_a_slow_client_does_not_block_the_others(student):
    path, images = student
    proc, url = start_server(str(path), "-S", "serve.body_timeout_s=4", "--threads", "1")
    try:
        slow: dict = {}
        t = threading.Thread(target=trickle, args=(url, 0.1, slow))
        t.start()
        wait_until(lambda: slow.get("started"), "the slow client did not connect")
        answered = []
        for _ in range(5):
            r = httpx.post(f"{url}/predict", json=images, timeout=30)
            assert r.status_code == 200
            answered.append(time.monotonic())
        t.join(60)
        assert slow["answer"].startswith("HTTP/1.1 408")
        assert max(answered) < slow["at"]  # every other request was answered while the slow one trickled
    finally:
        stop_server(proc)


def test_a_request_head_trickled_byte_by_byte_is_cut_off_and_keep_alive_still_works(student):
    """serve.header_timeout_s: a client that trickles its request head (each byte re-arms uvicorn's idle
    timer) gets 408 and loses its socket; a client that sends its heads in time keeps its connection
    for several requests, and serve.max_connections bounds the sockets: over it, the one that has waited
    longest for its head is closed."""
    path, images = student
    proc, url = start_server(str(path), "-S", "serve.header_timeout_s=1.5", "-S", "serve.max_connections=8")
    try:
        port = urlparse(url).port
        with socket.create_connection(("127.0.0.1", port)) as s:
            t0 = time.monotonic()
            s.settimeout(10)
            answer = b""
            for byte in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200:
                try:
                    s.sendall(bytes([byte]))
                except OSError:  # closed under us: the deadline passed
                    break
                if select.select([s], [], [], 0.1)[0]:
                    break
            while chunk := s.recv(65536):
                answer += chunk
            waited = time.monotonic() - t0
        assert answer.startswith(b"HTTP/1.1 408") and b"serve.header_timeout_s" in answer, answer[:300]
        assert 1.4 < waited < 6, waited
        with httpx.Client(timeout=30) as client:  # two requests on one kept-alive connection
            first = client.post(f"{url}/predict", json=images)
            time.sleep(0.5)
            second = client.post(f"{url}/predict", json=images)
        assert first.status_code == second.status_code == 200
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]  # the limit, held open
        try:
            time.sleep(0.2)
            # one over the limit: the connection that has waited longest for its head makes room
            assert httpx.get(f"{url}/metadata", timeout=10).status_code == 200
            socks[0].settimeout(5)
            assert socks[0].recv(1) == b"" and not select.select(socks[1:], [], [], 0.2)[0]
        finally:
            for s in socks:
                s.close()
    finally:
        stop_server(proc)
