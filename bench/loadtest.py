"""Load test of `cgankd serve` on loopback: N requests (one PNG of the embedded test split each)
from C concurrent keep-alive clients; throughput, latency percentiles and error count.

    python bench/loadtest.py [--model models:/cgankd-objects@champion] [--requests 5000] [--clients 16]
Writes bench/results/loadtest.json and loadtest.md. Client and server share this machine's CPUs.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from cgankd.base.io import write_json
from cgankd.data.prepared import load_prepared
from cgankd.serve.process import start_server, stop_server


def pngs(prepared: Path, n: int) -> list[bytes]:
    out = []
    for im in load_prepared(prepared)["test"].images[:n]:
        buf = io.BytesIO()
        Image.fromarray(im.transpose(1, 2, 0) if im.shape[0] == 3 else im[0]).save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models:/cgankd-objects@champion")
    ap.add_argument("--prepared", default="artifacts/prepared", help="images to send (its test split)")
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--threads", default="1", help="onnxruntime intra-op threads in the server")
    ap.add_argument("--out", default="bench/results/loadtest")
    args = ap.parse_args()
    bodies = pngs(Path(args.prepared), 256)
    proc, url = start_server(args.model, "--threads", args.threads, "--providers", "cpu")
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(args.requests))

    def client() -> None:
        with httpx.Client(timeout=30) as c:
            for i in counter:  # one shared iterator: each request index once (next() is atomic in CPython)
                t0 = time.perf_counter()
                try:
                    r = c.post(f"{url}/predict", content=bodies[i % len(bodies)],
                               headers={"content-type": "image/png"})
                    ok = r.status_code == 200 and len(r.json()["predictions"]) == 1
                    err = None if ok else f"{r.status_code} {r.text[:100]}"
                except httpx.HTTPError as exc:
                    err = repr(exc)
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)
                    if err:
                        errors.append(err)

    try:
        meta = httpx.get(f"{url}/metadata").json()
        with httpx.Client() as c:  # warm-up
            for b in bodies[:50]:
                c.post(f"{url}/predict", content=b, headers={"content-type": "image/png"})
        workers = [threading.Thread(target=client) for _ in range(args.clients)]
        t0 = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        wall = time.perf_counter() - t0
        healthy = httpx.get(f"{url}/healthz").status_code == 200
    finally:
        stop_server(proc)
    lat = np.array(latencies) * 1e3
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
              "model": args.model, "version": meta.get("version"), "requests": len(lat), "clients": args.clients,
              "server_threads": args.threads, "body": "one PNG per request", "seconds": wall,
              "throughput_per_s": len(lat) / wall, "p50_ms": float(np.percentile(lat, 50)),
              "p90_ms": float(np.percentile(lat, 90)), "p99_ms": float(np.percentile(lat, 99)),
              "max_ms": float(lat.max()), "errors": len(errors), "error_samples": errors[:5],
              "healthy_after": healthy}
    write_json(Path(args.out + ".json"), result)
    Path(args.out + ".md").write_text(
        f"{result['requests']} requests, {args.clients} clients, {args.model} (v{result['version']}), "
        f"{result['machine']}:\n\n| throughput req/s | p50 ms | p90 ms | p99 ms | max ms | errors |\n"
        f"|---:|---:|---:|---:|---:|---:|\n| {result['throughput_per_s']:.0f} | {result['p50_ms']:.1f} | "
        f"{result['p90_ms']:.1f} | {result['p99_ms']:.1f} | {result['max_ms']:.1f} | {result['errors']} |\n")
    print({k: v for k, v in result.items() if k != "error_samples"})


if __name__ == "__main__":
    main()
