"""The GAN's iterations/s on this CPU, today's step beside the faster layouts and precisions, side
by side in one run (issue 44).

Each path is the project's own ``train_gan`` under a different runtime (cgankd/compute/device.py):

- ``today``:  fp32, eager, contiguous (NCHW) tensors: the step before memory_format existed;
- ``cl``:     fp32, eager, channels_last nets and batches (``memory_format: auto`` on the CPU);
- ``compile``, ``compile-cl``: the same two with ``compile: true`` (inductor);
- ``compile-max``: ``compile_mode: max-autotune`` (inductor's tuned C++ GEMM templates);
- ``bf16-cl``: bf16 autocast + channels_last (``precision: auto`` picks it where the CPU has
  AVX512-BF16 or AMX; elsewhere bf16 is emulated, and the row says so).

Every path runs in its own process, at every shape, for ``--rounds`` rounds taken in turn (the
paths interleaved, so that a neighbour's load or a clock change hits them alike); each measurement
times ``--steps`` iterations after ``--warmup`` (compilation included in the warm-up). The table
gives each path's median it/s and its ratio to ``today`` at the same shape.

    python bench/gan_cpu.py                                # 16x16 and 32x32, 4 D steps, batch 64, width 24
    python bench/gan_cpu.py --paths today,cl --rounds 3 --shapes 16

Writes bench/results/gan_cpu.json and .md (after every measurement: an interrupted run keeps what it
measured).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cgankd.base.io import write_json, write_text  # noqa: E402

PATHS = {  # name -> (precision, compile, memory_format, compile_mode)
    "today": ("fp32", False, "contiguous", "default"),
    "cl": ("fp32", False, "channels_last", "default"),
    "compile": ("fp32", True, "contiguous", "default"),
    "compile-cl": ("fp32", True, "channels_last", "default"),
    "compile-max": ("fp32", True, "contiguous", "max-autotune"),
    "bf16-cl": ("bf16", False, "channels_last", "default"),
}

CHILD = r"""
import json, sys, tempfile, time
from pathlib import Path
import numpy as np, torch
import cgankd.gan.train as T
from cgankd.config import GanCfg
from cgankd.compute.device import Runtime, native_bf16
a = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
x = rng.integers(0, 256, (1000, 3, a["resolution"], a["resolution"]), dtype=np.uint8)
y = np.arange(1000) % 10
w, n = a["warmup"], a["steps"]
T.LOG_EVERY = 1
cfg = GanCfg(iterations=w + n, batch_size=a["batch"], g_ch=a["width"], d_ch=a["width"], d_steps=a["d_steps"],
             checkpoint_every=10**9)
rt = Runtime.from_config("cpu", a["precision"], a["compile"], a["mode"], a["memory_format"])
stamps = {}
def log(step, row):
    stamps[step] = time.perf_counter()
with tempfile.TemporaryDirectory() as tmp:
    T.train_gan(cfg, x, y, 10, 0, Path(tmp) / "ck.pt", log=log, runtime=rt)
print(json.dumps({"it_s": n / (stamps[w + n] - stamps[w]), "threads": torch.get_num_threads(),
                  "native_bf16": native_bf16(torch.device("cpu"))}))
"""


def measure(path: str, res: int, args: argparse.Namespace) -> dict:
    precision, compile_, fmt, mode = PATHS[path]
    spec = {"resolution": res, "batch": args.batch, "width": args.width, "d_steps": args.d_steps,
            "warmup": args.warmup + (args.compile_warmup if compile_ else 0), "steps": args.steps,
            "precision": precision, "compile": compile_, "memory_format": fmt, "mode": mode}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def markdown(res: dict) -> str:
    a = res["args"]
    lines = ["# GAN iterations/s on the CPU: today's step and the faster paths", "",
             f"Machine: {res['machine']}; torch {res['torch']}; native bf16: {res['native_bf16']}. GAN batch "
             f"{a['batch']}, width {a['width']}, {a['d_steps']} D steps; median of {a['rounds']} rounds of "
             f"{a['steps']} iterations after a warm-up of {a['warmup']} (compiled paths: +{a['compile_warmup']}, "
             f"measured in the first round only: {a['once'] or 'none'}).",
             f"Command: `python bench/gan_cpu.py {' '.join(res['argv'])}`", "",
             "| shape | path | it/s (median) | rounds | vs today |", "|---|---|---:|---|---:|"]
    for shape, rows in res["shapes"].items():
        base = rows.get("today", {}).get("median")
        for path, row in rows.items():
            med = row.get("median")
            ratio = f"{med / base:.2f}x" if med and base else "-"
            runs = ", ".join(f"{v:.2f}" for v in row["runs"]) or "; ".join(row["errors"])
            label = path + (" (bf16 emulated)" if path.startswith("bf16") and not res["native_bf16"] else "")
            lines.append(f"| {shape} | {label} | {med:.2f} | {runs} | {ratio} |" if med else
                         f"| {shape} | {label} | - | {runs} | - |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--paths", default="today,cl,compile,compile-cl,bf16-cl")
    p.add_argument("--shapes", default="16,32", help="resolutions, comma-separated")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--width", type=int, default=24)
    p.add_argument("--d-steps", type=int, default=4)
    p.add_argument("--warmup", type=int, default=4)
    p.add_argument("--compile-warmup", type=int, default=6, help="extra warm-up iterations of a compiled path")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--once", default="compile,compile-cl,compile-max", help="paths measured in the first round only "
                   "(compiling costs a minute or more per process)")
    p.add_argument("--out", default=str(ROOT / "bench/results/gan_cpu"))
    args = p.parse_args()
    paths = [x.strip() for x in args.paths.split(",") if x.strip()]
    unknown = [x for x in paths if x not in PATHS]
    if unknown:
        raise SystemExit(f"gan_cpu: unknown path(s) {', '.join(unknown)}; known: {', '.join(PATHS)}")
    import torch

    from cgankd.compute.device import native_bf16

    res = {"machine": f"{platform.machine()}, {os.cpu_count()} CPU(s), {platform.platform()}",
           "torch": torch.__version__, "native_bf16": native_bf16(torch.device("cpu")), "argv": sys.argv[1:],
           "args": vars(args), "shapes": {}}
    out = Path(args.out)
    failed = False
    for r in (int(s) for s in args.shapes.split(",")):
        shape = f"{r}x{r}"
        rows = res["shapes"].setdefault(shape, {q: {"runs": [], "errors": []} for q in paths})
        once = {x.strip() for x in args.once.split(",") if x.strip()}
        for i in range(args.rounds):
            for q in (q for q in paths if i == 0 or q not in once):
                m = measure(q, r, args)
                if "error" in m:
                    rows[q]["errors"].append(m["error"])
                    failed = True
                else:
                    rows[q]["runs"].append(m["it_s"])
                    rows[q]["median"] = statistics.median(rows[q]["runs"])
                print(f"gan_cpu: {shape} {q} round {i + 1}: {m}", flush=True)
                write_json(out.with_suffix(".json"), res)
                write_text(out.with_suffix(".md"), markdown(res))
    print(markdown(res))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
