"""Student sweep wall time: ``cgankd compare`` serial vs ``--workers N`` (a local Dask cluster through
Prefect), side by side in one run on the same upstream outputs (``--reuse``): only the student jobs
differ. Serial uses every core in one process; the cluster gives each worker cores // N threads.

    python bench/sweep.py --workers 2        # -> bench/results/sweep.{json,md}
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
BIN = os.path.join(os.path.dirname(sys.executable), "cgankd")


def compare(params: Path, work: Path, methods: list[str], seeds: list[str], threads: int, *extra: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([BIN, "compare", "-p", str(params), "-S", f"threads={threads}", "--pairs", "resnet8:convnet_s",
                    "--methods", *methods, "--seeds", *seeds, "--work", str(work), "--reuse", *extra],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "CGANKD_TRACKING": "off"})
    return time.perf_counter() - t0


def main() -> None:
    from conftest import shrunk

    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--steps", type=int, default=400, help="student steps per job")
    ap.add_argument("--seeds", nargs="+", default=["0", "1"])
    ap.add_argument("--work", default="bench/work/sweep")
    a = ap.parse_args()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    params = work / "params.yaml"
    params.write_text(yaml.safe_dump(shrunk(work / "unused", f"student.steps={a.steps}", "student.eval_every=100",
                                            f"student.finetune_steps={a.steps // 2}").to_dict(), sort_keys=False))
    methods = ["nokd", "blkd", "cgankd", "cgankd+blkd"]
    cores = os.cpu_count() or 1
    compare(params, work / "w", methods, a.seeds, cores)  # the upstream stages, once, shared below
    times = {}
    for name, threads, extra in (("serial", cores, []),
                                 (f"--workers {a.workers}", max(1, cores // a.workers), ["--workers", str(a.workers)])):
        for f in (work / "w").glob("compare_*"):
            f.unlink()
        for d in (work / "w").rglob("students"):
            shutil.rmtree(d)
        times[name] = compare(params, work / "w", methods, a.seeds, threads, *extra)
    jobs = len(methods) * len(a.seeds)
    machine = f"{platform.machine()}, {cores} cores, no GPU"
    result = {"machine": machine, "jobs": jobs, "student_steps": a.steps, "seconds": times,
              "speedup": times["serial"] / times[f"--workers {a.workers}"]}
    out = ROOT / "bench" / "results" / "sweep.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    md = [f"Student sweep, {jobs} jobs ({', '.join(methods)} x seeds {' '.join(a.seeds)}, {a.steps} steps each, "
          f"shrunken data), {machine}:", "", "| runner | wall time (s) |", "|---|---:|"]
    md += [f"| {k} | {v:.0f} |" for k, v in times.items()]
    md += ["", f"Speed-up: {result['speedup']:.2f}x"]
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
