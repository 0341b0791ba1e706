"""Dynamic batching in `cgankd serve`: throughput and p50/p99 latency of single-input requests at
several concurrencies, with batching on and off, beside raw onnxruntime at the same batch sizes (the
limit the server can approach), side by side in one run on this machine.

The student is the demo's architecture (``student.arch`` of params.yaml) at the demo's input shape,
exported with its serving metadata; its weights are the untrained ones (speed does not depend on
them). Each request is one uint8 image as a .npy body to ``/predict``; the clients are asyncio
keep-alive connections on this machine (they share its CPUs with the server: said in the table).
The server's effective batch is read from its ``cgankd_model_call_inputs`` histogram.

    python bench/serve_batching.py [--concurrency 1 8 64] [--seconds 8] [--threads 1] [--arch resnet20]

Writes bench/results/serve_batching.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cgankd.base.io import write_json, write_text  # noqa: E402


def student_onnx(path: Path, arch: str, channels: int, resolution: int, classes: int) -> Path:
    from cgankd.data.prepared import Meta
    from cgankd.models import build_model
    from cgankd.serve.onnx_export import export_onnx, serving_metadata

    meta = Meta("classification", "objects", channels, resolution, [f"c{i}" for i in range(classes)])
    model = build_model(arch, channels, classes, resolution)
    export_onnx(model, path, channels, resolution, 18, False, serving_metadata(meta, "cgankd"))
    return path


def raw_onnxruntime(path: Path, x: np.ndarray, batch: int, threads: int, seconds: float) -> float:
    """Inputs/s of session.run at ``batch`` (the batch repeated), after a warm-up."""
    from cgankd.serve.runtime import make_session

    sess = make_session(path, ["CPUExecutionProvider"], threads)
    name = sess.get_inputs()[0].name
    xb = np.resize(x, (batch, *x.shape[1:])).astype(np.float32) / np.float32(255.0)
    for _ in range(5):
        sess.run(None, {name: xb})
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        sess.run(None, {name: xb})
        n += batch
    return n / (time.perf_counter() - t0)


async def load(url: str, bodies: list[bytes], concurrency: int, seconds: float) -> dict:
    import httpx

    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        async def worker(i: int) -> None:
            nonlocal errors
            k = i
            while time.perf_counter() < stop:
                t = time.perf_counter()
                r = await client.post("/predict", content=bodies[k % len(bodies)])
                latencies.append(time.perf_counter() - t)
                errors += r.status_code != 200
                k += concurrency
        for i in range(min(concurrency, 4)):  # warm-up: connections open, sessions warm
            await client.post("/predict", content=bodies[i])
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        wall = time.perf_counter() - t0
    ms = np.array(latencies) * 1000
    return {"requests": len(ms), "req_s": len(ms) / wall, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "errors": errors}


def effective_batch(url: str) -> tuple[float, float]:
    """(sum, count) of the server's inputs-per-call histogram."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    s = c = 0.0
    for fam in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        if fam.name == "cgankd_model_call_inputs":
            for smp in fam.samples:
                s += smp.value if smp.name.endswith("_sum") else 0
                c += smp.value if smp.name.endswith("_count") else 0
    return s, c


def markdown(res: dict) -> str:
    a = res["args"]
    lines = ["# Dynamic batching in `cgankd serve`", "",
             f"Machine: {res['machine']}; onnxruntime {res['onnxruntime']}, {a['threads']} intra-op thread(s); "
             f"student {res['arch']} at {res['shape']}; batching: batch_max {a['batch_max']}, batch_wait_ms "
             f"{a['batch_wait_ms']}; {a['seconds']} s per row; clients on the same machine.",
             f"Command: `python bench/serve_batching.py {' '.join(res['argv'])}`", "",
             "| concurrency | batching | req/s | p50 ms | p99 ms | effective batch | errors | raw onnxruntime "
             "inputs/s at that batch | server / raw |", "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in res["rows"]:
        lines.append(f"| {r['concurrency']} | {'on' if r['batching'] else 'off'} | {r['req_s']:.0f} | "
                     f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['effective_batch']:.1f} | {r['errors']} | "
                     f"{r['raw_s']:.0f} | {r['req_s'] / r['raw_s']:.2f} |")
    by = {(r["concurrency"], r["batching"]): r for r in res["rows"]}
    lines.append("")
    for c in a["concurrency"]:
        if (c, True) in by and (c, False) in by:
            on, off = by[(c, True)], by[(c, False)]
            lines.append(f"- concurrency {c}: batching x{on['req_s'] / off['req_s']:.2f} the throughput; p99 "
                         f"{on['p99_ms'] - off['p99_ms']:+.1f} ms")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (server and raw)")
    p.add_argument("--batch-max", type=int, default=32)
    p.add_argument("--batch-wait-ms", type=float, default=2.0)
    p.add_argument("--arch", default=None, help="the student's architecture (default: student.arch of params.yaml)")
    p.add_argument("--out", default=str(ROOT / "bench/results/serve_batching"))
    args = p.parse_args()
    import onnxruntime
    import yaml

    from cgankd.serve.process import start_server, stop_server

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    arch, res_px = args.arch or params["student"]["arch"], params["data"]["render"]["resolution"]
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 3, res_px, res_px), dtype=np.uint8)
    bodies = []
    for im in images:
        buf = io.BytesIO()
        np.save(buf, im[None])
        bodies.append(buf.getvalue())
    res = {"machine": f"{platform.machine()}, {os.cpu_count()} CPU(s), {platform.platform()}",
           "onnxruntime": onnxruntime.__version__, "arch": arch, "shape": f"3x{res_px}x{res_px}",
           "argv": sys.argv[1:], "args": vars(args), "rows": []}
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        path = student_onnx(Path(tmp) / "student.onnx", arch, 3, res_px, 10)
        raw: dict[int, float] = {}
        for batching in (False, True):
            proc, url = start_server(str(path), "--threads", str(args.threads), "--providers", "cpu",
                                     "-S", f"serve.batching={str(batching).lower()}",
                                     "-S", f"serve.batch_max={args.batch_max}",
                                     "-S", f"serve.batch_wait_ms={args.batch_wait_ms}",
                                     "-S", f"serve.max_in_flight={max(64, max(args.concurrency))}")
            try:
                for c in args.concurrency:
                    s0, c0 = effective_batch(url)
                    row = asyncio.run(load(url, bodies, c, args.seconds))
                    s1, c1 = effective_batch(url)
                    eff = (s1 - s0) / max(c1 - c0, 1)
                    b = max(1, round(eff))
                    if b not in raw:
                        raw[b] = raw_onnxruntime(path, images, b, args.threads, min(args.seconds, 4))
                    res["rows"].append({"concurrency": c, "batching": batching, **row, "effective_batch": eff,
                                        "raw_batch": b, "raw_s": raw[b]})
                    print(f"serve_batching: {res['rows'][-1]}", flush=True)
                    write_json(out.with_suffix(".json"), res)
                    write_text(out.with_suffix(".md"), markdown(res))
            finally:
                stop_server(proc)
    print(markdown(res))


if __name__ == "__main__":
    main()
