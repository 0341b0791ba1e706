"""An ``mlflow server`` on a sqlite store, with and without MLflow's job runner, side by side.

cgankd starts its MLflow servers (``cgankd ui``, the team stack) with the job runner off
(``cgankd.ops.mlflow_ui.no_mlflow_jobs``). For each setting, alternately, ``--repeats`` times: the
seconds until ``/health`` answers, then, ``--settle`` seconds later, the processes of the server's
process group, their resident memory and the CPU seconds they used since the start.

    python bench/mlflow_server.py            # writes bench/results/mlflow_server.{json,md}
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from cgankd.base.io import write_json, write_text
from cgankd.serve.process import free_port

BIN = os.path.join(os.path.dirname(sys.executable), "mlflow")
TICK = os.sysconf("SC_CLK_TCK")


def group(pgid: int) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and os.getpgid(int(d.name)) == pgid:
                pids.append(int(d.name))
        except ProcessLookupError:
            pass
    return pids


def usage(pids: list[int]) -> tuple[float, float]:
    """(CPU seconds, resident MB) of these processes."""
    cpu = rss = 0.0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(stat[11]) + int(stat[12])) / TICK  # utime, stime
            rss += int(stat[21]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (FileNotFoundError, ProcessLookupError):
            pass
    return cpu, rss


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}"


def one(jobs: bool, settle: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/mlflow.db"
        subprocess.run([sys.executable, "-c", f"from mlflow.tracking import MlflowClient; "
                        f"MlflowClient({db!r}).search_experiments()"], check=True, capture_output=True)
        port = free_port()
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": str(jobs).lower()}
        start = time.monotonic()
        proc = subprocess.Popen([BIN, "server", "--backend-store-uri", db, "--host", "127.0.0.1", "--port",
                                 str(port), "--workers", "1"], env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() - start > 120:
                        raise SystemExit("mlflow server did not answer") from None
                    time.sleep(0.1)
            ready = time.monotonic() - start
            time.sleep(settle)
            pids = group(proc.pid)
            cpu, rss = usage(pids)
            return {"job_runner": jobs, "ready_s": round(ready, 2), "processes": len(pids),
                    "cpu_s": round(cpu, 1), "rss_mb": round(rss)}
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--settle", type=float, default=15.0)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    runs = [one(jobs, args.settle) for _ in range(args.repeats) for jobs in (True, False)]
    write_json(args.out / "mlflow_server.json", {"machine": machine(), "runs": runs})
    lines = [f"# mlflow server on sqlite, with and without the job runner ({machine()})", "",
             f"| job runner | ready (s) | processes | CPU s (start to ready + {args.settle:g} s) | RSS MB |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {'on' if r['job_runner'] else 'off'} | {r['ready_s']} | {r['processes']} | {r['cpu_s']} | "
              f"{r['rss_mb']} |" for r in runs]
    write_text(args.out / "mlflow_server.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
