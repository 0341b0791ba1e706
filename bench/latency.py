"""Inference speed of each registered student and its teacher: PyTorch eager vs onnxruntime (and the
student's int8 twin, export/student.int8.onnx, when ``export.int8`` wrote one; on a GPU, the server's
I/O-bound CUDA path for the fp32 model and the fp16 twin, export/student.fp16.onnx, from ``export.fp16``).

For every pipeline output folder (default: the demo's two), the student that was exported and
registered (export/student.onnx + its PyTorch checkpoint) and the teacher (exported to ONNX here):
latency p50/p90/p99 at batch 1 and throughput at batch 64, after warm-up, with fixed thread counts
(torch.set_num_threads = onnxruntime intra-op threads). onnxruntime runs on the CPU provider, and
on the CUDA provider too when the machine has a usable GPU.

    python bench/latency.py [--dirs artifacts artifacts/regression] [--threads 1 2]
Writes bench/results/latency.json and latency.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cgankd.base.io import read_json, write_json
from cgankd.compute.providers import cuda_usable
from cgankd.serve.onnx_export import export_onnx
from cgankd.serve.runtime import load_onnx, make_session
from cgankd.store import load_model


def timings(fn, x: Any, warmup: int, iters: int) -> np.ndarray:
    for _ in range(warmup):
        fn(x)
    out = np.empty(iters)
    for i in range(iters):
        t0 = time.perf_counter()
        fn(x)
        out[i] = time.perf_counter() - t0
    return out


def measure(fn, shape: tuple[int, ...], iters: int, batch: int) -> dict[str, float]:
    x1 = np.random.default_rng(0).random((1, *shape), dtype=np.float32)
    xb = np.random.default_rng(1).random((batch, *shape), dtype=np.float32)
    lat = timings(fn, x1, warmup=50, iters=iters) * 1e3
    thr = timings(fn, xb, warmup=5, iters=max(iters // 20, 20))
    return {"p50_ms": float(np.percentile(lat, 50)), "p90_ms": float(np.percentile(lat, 90)),
            "p99_ms": float(np.percentile(lat, 99)), f"throughput_b{batch}_per_s": float(batch / np.median(thr))}


def engines(model: torch.nn.Module, onnx_path: Path, threads: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    model = model.eval()

    def eager(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()

    out = {"pytorch-eager-cpu": eager}
    providers = [("onnxruntime-cpu", ["CPUExecutionProvider"])]
    if cuda_usable():
        providers.append(("onnxruntime-cuda", ["CUDAExecutionProvider", "CPUExecutionProvider"]))
    int8 = onnx_path.with_name("student.int8.onnx")
    if int8.is_file():  # export.int8's twin, on the CPU provider (cgankd/serve/quantize.py)
        providers.append(("onnxruntime-cpu-int8", ["CPUExecutionProvider"]))
    for name, prov in providers:
        sess = make_session(int8 if name.endswith("int8") else onnx_path, prov, threads)
        inp, outp = sess.get_inputs()[0].name, sess.get_outputs()[0].name
        out[name] = lambda x, s=sess, i=inp, o=outp: s.run([o], {i: x})[0]
    if cuda_usable() and onnx_path.name == "student.onnx":  # the server's CUDA path (a served student's
        # serving metadata): an I/O binding, for fp32 and the fp16 twin (export.fp16)
        for name, path in (("onnxruntime-cuda-bound", onnx_path),
                           ("onnxruntime-cuda-fp16-bound", onnx_path.with_name("student.fp16.onnx"))):
            if path.is_file():
                out[name] = load_onnx(path, providers="cuda", threads=threads, io_binding="on").run
    return out


def models_of(folder: Path, tmp: Path) -> list[tuple[str, torch.nn.Module, Path]]:
    registry = read_json(folder / "registry.json")
    method = read_json(folder / "export" / "parity.json")["method"]
    student = load_model(folder / "students" / method / "model.pt")
    teacher = load_model(folder / "teacher" / "model.pt")
    c, r = student.meta["in_channels"], student.meta["resolution"]
    teacher_onnx = tmp / f"{folder.name}-teacher.onnx"
    export_onnx(teacher, teacher_onnx, c, r, 18, False)
    label = f"{registry.get('model_name', folder.name)} v{registry.get('version', '?')}"
    return [(f"student {label} ({student.meta['arch']}, {method})", student, folder / "export" / "student.onnx"),
            (f"teacher ({teacher.meta['arch']})", teacher, teacher_onnx)]


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | params | engine | threads | p50 ms (b1) | p90 ms | p99 ms | images/s (b64) |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['params']:,} | {r['engine']} | {r['threads']} | {r['p50_ms']:.3f} | "
                     f"{r['p90_ms']:.3f} | {r['p99_ms']:.3f} | {r['throughput_b64_per_s']:,.0f} |")
    return "\n".join(lines)


def speedups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per folder and thread count: ONNX student vs the student and the teacher in PyTorch (p50, b1)."""
    out = []
    for r in rows:
        if not (r["model"].startswith("student") and r["engine"] == "onnxruntime-cpu"):
            continue
        same = [q for q in rows if q["folder"] == r["folder"] and q["threads"] == r["threads"]
                and q["engine"] == "pytorch-eager-cpu"]
        st = next(q for q in same if q["model"] == r["model"])
        te = next(q for q in same if q["model"].startswith("teacher"))
        out.append({"folder": r["folder"], "threads": r["threads"],
                    "vs_student_pytorch": st["p50_ms"] / r["p50_ms"], "vs_teacher_pytorch": te["p50_ms"] / r["p50_ms"],
                    "target_2x_met": st["p50_ms"] / r["p50_ms"] >= 2, "target_5x_met": te["p50_ms"] / r["p50_ms"] >= 5})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dirs", nargs="+", default=["artifacts", "artifacts/regression"])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--iters", type=int, default=1000, help="batch-1 timings per (model, engine)")
    ap.add_argument("--out", default="bench/results/latency")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for folder in map(Path, args.dirs):
            for name, model, onnx_path in models_of(folder, Path(tmp)):
                shape = (model.meta["in_channels"], model.meta["resolution"], model.meta["resolution"])
                for threads in args.threads:
                    for engine, fn in engines(model, onnx_path, threads).items():
                        m = measure(fn, shape, args.iters, 64)
                        rows.append({"folder": str(folder), "model": name, "engine": engine, "threads": threads,
                                     "params": sum(p.numel() for p in model.parameters()), "input": list(shape), **m})
                        print(f"{name:<55} {engine:<18} t={threads} p50 {m['p50_ms']:.3f} ms  "
                              f"b64 {m['throughput_b64_per_s']:,.0f}/s", flush=True)
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
              "gpu": cuda_usable(), "torch": torch.__version__, "onnxruntime": __import__("onnxruntime").__version__,
              "rows": rows, "speedups": speedups(rows)}
    write_json(Path(args.out + ".json"), result)
    sp = "\n".join(f"- {s['folder']}, {s['threads']} thread(s): ONNX student b1 p50 is {s['vs_student_pytorch']:.1f}x "
                   f"faster than the student in PyTorch (target 2x), {s['vs_teacher_pytorch']:.1f}x faster than the "
                   f"teacher in PyTorch (target 5x)" for s in result["speedups"])
    Path(args.out + ".md").write_text(f"Machine: {result['machine']}; torch {result['torch']}, onnxruntime "
                                      f"{result['onnxruntime']}\n\n{table(rows)}\n\n{sp}\n")
    print(json.dumps(result["speedups"], indent=1))


if __name__ == "__main__":
    main()
