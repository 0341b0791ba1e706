"""Soak test of `cgankd serve` on loopback: a steady request rate for minutes, a mix of good and
hostile payloads, a `/reload` every so often and a client trickling its body byte by byte now and
then. Reports throughput, p50/p99 of the good requests, unexpected answers (a good request not
200, a hostile one not its 4xx, any 5xx or dropped connection) and the server's resident memory
at the start (after warm-up) and the end.

    python bench/soak.py [--model artifacts/export/student.onnx] [--minutes 10] [--rate 100]
Writes bench/results/soak.json and soak.md. Client and server share this machine's CPUs.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import secrets
import select
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np
from PIL import Image

from cgankd.base.io import write_json, write_text
from cgankd.data.prepared import load_prepared
from cgankd.serve.process import bearer, start_server, stop_server


def png(im: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(im.transpose(1, 2, 0) if im.shape[0] == 3 else im[0]).save(buf, "PNG")
    return buf.getvalue()


def payloads(images: np.ndarray) -> tuple[list[dict], list[dict]]:
    """(good, hostile) requests as httpx keyword arguments; a good one must get 200, a hostile one
    a 4xx (which one is the server's tests' business: tests/test_serve.py)."""
    x = images.astype(np.float32) / 255.0
    good = [{"content": png(im), "headers": {"content-type": "image/png"}} for im in images[:64]]
    good += [{"json": {"inputs": x[i:i + 8].tolist()}} for i in range(0, 32, 8)]
    npy = io.BytesIO()
    np.save(npy, images[:1].astype(np.int64))
    hostile = [
        {"content": png(images[0])[:60], "headers": {"content-type": "image/png"}},  # truncated
        {"content": b""},  # empty
        {"content": b"{not json", "headers": {"content-type": "application/json"}},
        {"content": b'{"inputs": [[[NaN]]]}', "headers": {"content-type": "application/json"}},
        {"content": npy.getvalue()},  # wrong dtype
        {"content": png(np.zeros((3, 7, 9), np.uint8)), "headers": {"content-type": "image/png"}},
        {"content": os.urandom(2048), "headers": {"content-type": "image/png"}},  # noise
        {"content": b"\0" * (17 * 1024 * 1024)},  # over the body limit
    ]
    return good, hostile


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def trickle(url: str, gap: float) -> str:
    port = urlparse(url).port
    with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(1000):
            if select.select([s], [], [], gap)[0]:
                break
            s.sendall(b"x")
        return s.recv(4096).decode(errors="replace").split("\r\n", 1)[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="artifacts/export/student.onnx")
    ap.add_argument("--prepared", default="artifacts/prepared", help="images to send (its test split)")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=100.0, help="requests per second, all clients together")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--hostile", type=float, default=0.2, help="share of hostile requests")
    ap.add_argument("--reload-every", type=float, default=60.0, help="seconds between /reload calls")
    ap.add_argument("--trickle-every", type=float, default=30.0, help="seconds between slow-body clients")
    ap.add_argument("--threads", default="1", help="onnxruntime intra-op threads in the server")
    ap.add_argument("--out", default="bench/results/soak")
    args = ap.parse_args()
    good, hostile = payloads(load_prepared(Path(args.prepared))["test"].images)
    token = secrets.token_urlsafe(24)  # the operator's /reload token for this run
    proc, url = start_server(args.model, "--threads", args.threads, "--providers", "cpu", token=token)
    lat: list[float] = []
    unexpected: list[str] = []
    counts = {"good": 0, "hostile": 0, "busy_503": 0, "reloads": 0, "trickled_408": 0}
    lock = threading.Lock()
    stop = threading.Event()
    try:
        with httpx.Client(timeout=30) as c:  # warm-up, then the baseline memory
            for p in good[:50]:
                c.post(f"{url}/predict", **p)
        rss0 = rss_mb(proc.pid)
        period = args.clients / args.rate
        t_start = time.monotonic()
        t_end = t_start + 60 * args.minutes

        def client(k: int) -> None:
            local = np.random.default_rng(k)
            nxt = t_start + k * period / args.clients
            with httpx.Client(timeout=30) as c:
                while time.monotonic() < t_end:
                    time.sleep(max(0.0, nxt - time.monotonic()))
                    nxt += period
                    bad = local.random() < args.hostile
                    p = (hostile if bad else good)[local.integers(len(hostile if bad else good))]
                    t0 = time.perf_counter()
                    try:
                        r = c.post(f"{url}/predict", **p)
                        status = r.status_code
                    except httpx.HTTPError as exc:
                        status, r = -1, exc
                    dt = time.perf_counter() - t0
                    with lock:
                        counts["hostile" if bad else "good"] += 1
                        if status == 503:
                            counts["busy_503"] += 1
                        elif (status != 200) if not bad else not 400 <= status < 500:
                            unexpected.append(f"{'hostile' if bad else 'good'}: got {status}")
                        elif not bad:
                            lat.append(dt)

        def reloader() -> None:
            while not stop.wait(args.reload_every):
                r = httpx.post(f"{url}/reload", timeout=60, headers=bearer(token))
                with lock:
                    counts["reloads"] += r.status_code == 200
                    if r.status_code != 200:
                        unexpected.append(f"reload: {r.status_code} {r.text[:100]}")

        def trickler() -> None:
            while not stop.wait(args.trickle_every):
                line = trickle(url, 0.5)
                with lock:
                    counts["trickled_408"] += " 408 " in line
                    if " 408 " not in line:
                        unexpected.append(f"trickle: {line}")

        workers = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
        side = [threading.Thread(target=reloader, daemon=True), threading.Thread(target=trickler, daemon=True)]
        for t in workers + side:
            t.start()
        samples = []
        while any(t.is_alive() for t in workers):
            time.sleep(5)
            samples.append(round(rss_mb(proc.pid), 1))
        for t in workers:
            t.join()
        stop.set()
        wall = time.monotonic() - t_start
        rss1 = rss_mb(proc.pid)
        healthy = httpx.get(f"{url}/healthz").status_code == 200
    finally:
        stop_server(proc)
    ms = np.array(lat) * 1e3
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
              "model": args.model, "minutes": args.minutes, "target_rate_per_s": args.rate, "clients": args.clients,
              "server_threads": args.threads, "seconds": wall, **counts,
              "throughput_per_s": (counts["good"] + counts["hostile"]) / wall,
              "good_p50_ms": float(np.percentile(ms, 50)), "good_p99_ms": float(np.percentile(ms, 99)),
              "unexpected": len(unexpected), "unexpected_samples": unexpected[:10],
              "rss_start_mb": rss0, "rss_end_mb": rss1, "rss_growth_pct": 100 * (rss1 - rss0) / rss0,
              "rss_samples_mb": samples, "healthy_after": healthy}
    write_json(Path(args.out + ".json"), result)
    write_text(Path(args.out + ".md"),
               f"{args.minutes:g} min at {args.rate:g} req/s ({args.hostile:.0%} hostile), {args.clients} clients, "
               f"a /reload every {args.reload_every:g} s, a byte-by-byte client every {args.trickle_every:g} s; "
               f"{result['machine']}:\n\n| requests | throughput req/s | good p50 ms | good p99 ms | unexpected | "
               f"503 busy | reloads | trickles -> 408 | RSS start -> end MB |\n"
               f"|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
               f"| {counts['good'] + counts['hostile']} | {result['throughput_per_s']:.0f} | "
               f"{result['good_p50_ms']:.1f} | "
               f"{result['good_p99_ms']:.1f} | {len(unexpected)} | {counts['busy_503']} | {counts['reloads']} | "
               f"{counts['trickled_408']} | {rss0:.0f} -> {rss1:.0f} ({result['rss_growth_pct']:+.1f}%) |\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rss_samples_mb"}, indent=1))


if __name__ == "__main__":
    main()
