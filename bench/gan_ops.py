"""Operations per GAN iteration, and iterations/s, of this tree's GAN step beside an earlier
commit's, measured in one run on this machine.

On a GPU every operation the step issues is at least one kernel launch, so the count decides how
far a fast GPU sits idle between kernels (issue 31: ~5,100 per iteration kept an H100 at
14-18 it/s). The CPU counts them exactly: the leaf aten operations torch.profiler records between
two iterations, inside ``train_gan`` itself (the project's code, at the default GAN config or the
one given), eager and with ``compile: true``.

    python bench/gan_ops.py                       # HEAD's working tree vs --before, eager + compile
    python bench/gan_ops.py --before 0605e2b --modes eager --resolution 32 --batch 64

Each (tree, mode) runs in its own process: iterations 1..W warm up (compilation included), the
next N are timed, the N after those are profiled. The earlier commit is checked out with
``git worktree`` into a temporary folder. Writes bench/results/gan_ops.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "0605e2b"  # the last commit with two D calls per D step and torch's spectral norm hooks

# run inside the measured tree (its own cgankd on sys.path): prints one JSON line
CHILD = r"""
import collections, json, sys, tempfile, time
from pathlib import Path
import numpy as np, torch
import cgankd.gan.train as T
from cgankd.config import GanCfg
from cgankd.compute.device import Runtime
a = json.loads(sys.argv[1])
if a["threads"]:
    torch.set_num_threads(a["threads"])
rng = np.random.default_rng(0)
x = rng.integers(0, 256, (1000, a["channels"], a["resolution"], a["resolution"]), dtype=np.uint8)
y = np.arange(1000) % 10
w, n = a["warmup"], a["steps"]
T.LOG_EVERY = n if w % n == 0 else 1
cfg = GanCfg(iterations=w + 2 * n, batch_size=a["batch"], g_ch=a["width"], d_ch=a["width"],
             d_steps=a["d_steps"], checkpoint_every=10**9)
rt = Runtime.from_config("cpu", "fp32", a["compile"])
prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
stamps = {}
def log(step, row):
    if step == w + n:
        prof.start()
    stamps[step] = time.perf_counter()
    if step == w + 2 * n:
        prof.stop()
with tempfile.TemporaryDirectory() as tmp:
    T.train_gan(cfg, x, y, 10, 0, Path(tmp) / "ck.pt", log=log, runtime=rt)
leaf = [e.name for e in prof.events()
        if e.name.startswith("aten::") and not any(c.name.startswith("aten::") for c in e.cpu_children)]
top = collections.Counter(leaf).most_common(12)
print(json.dumps({"ops_per_iter": len(leaf) / n, "it_s": n / (stamps[w + n] - stamps[w]),
                  "top": [[k, v / n] for k, v in top]}))
"""


def measure(tree: Path, args: argparse.Namespace, compile_: bool) -> dict:
    spec = {"threads": args.threads, "channels": 3, "resolution": args.resolution, "batch": args.batch,
            "width": args.width, "d_steps": args.d_steps, "warmup": args.warmup, "steps": args.steps,
            "compile": compile_}
    env = {**os.environ, "PYTHONPATH": str(tree)}
    res = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], cwd=tree, env=env,
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"gan_ops: {tree} ({'compile' if compile_ else 'eager'}) failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def markdown(result: dict) -> str:
    a = result["args"]
    lines = [f"# GAN step: operations per iteration, {result['before']} vs this tree", "",
             f"Machine: {result['machine']}; torch {result['torch']}; GAN at {a['resolution']}x{a['resolution']}x3, "
             f"batch {a['batch']}, width {a['width']}, d_steps {a['d_steps']}; fp32 on the CPU, "
             f"{a['threads'] or 'default'} thread(s). Ops: leaf aten operations per iteration (torch.profiler, "
             f"{a['steps']} iterations after {a['warmup'] + a['steps']}); it/s over the {a['steps']} before them.",
             f"Command: `{result['command']}`", "",
             "| mode | ops/iter before | ops/iter now | ratio | it/s before | it/s now | speed-up |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for mode, r in result["rows"].items():
        b, n = r["before"], r["now"]
        lines.append(f"| {mode} | {b['ops_per_iter']:,.0f} | {n['ops_per_iter']:,.0f} | "
                     f"{n['ops_per_iter'] / b['ops_per_iter']:.2f} | {b['it_s']:.2f} | {n['it_s']:.2f} | "
                     f"{n['it_s'] / b['it_s']:.2f}x |")
    lines += ["", "Most frequent leaf operations now (per iteration):", ""]
    for mode, r in result["rows"].items():
        lines.append(f"- {mode}: " + ", ".join(f"{k.removeprefix('aten::')} {v:.0f}" for k, v in r["now"]["top"]))
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", default=BEFORE, help="the commit to compare with")
    ap.add_argument("--modes", default="eager,compile", help="eager, compile or both")
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--width", type=int, default=24)
    ap.add_argument("--d-steps", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=0, help="torch threads; 0 = torch's default")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gan_ops")
    args = ap.parse_args()
    import torch

    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(old), args.before], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            for mode in args.modes.split(","):
                compile_ = mode == "compile"
                rows[mode] = {"before": measure(old, args, compile_), "now": measure(ROOT, args, compile_)}
                print(f"gan_ops {mode}: {rows[mode]['before']['ops_per_iter']:.0f} -> "
                      f"{rows[mode]['now']['ops_per_iter']:.0f} ops/iter, {rows[mode]['before']['it_s']:.2f} -> "
                      f"{rows[mode]['now']['it_s']:.2f} it/s", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT, capture_output=True)
    result = {"machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.platform()}",
              "torch": torch.__version__, "before": args.before, "args": vars(args) | {"out": str(args.out)},
              "rows": rows,
              "command": "python bench/gan_ops.py " + " ".join(sys.argv[1:])}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
