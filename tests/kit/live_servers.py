"""Servers the tests start for real (Prefect, MLflow): wait until one answers, stop it by its PID."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cgankd.ops.mlflow_ui import no_mlflow_jobs
from cgankd.ops.servers import stop  # noqa: F401  (the tests' way to stop a server, too)


def wait_for(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else f"exited {proc.returncode}"
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{url} did not answer in {timeout:.0f} s")


def mlflow_server(db: Path, port: int) -> subprocess.Popen:
    """``mlflow server`` on the sqlite store ``db`` (artifacts and its log beside it), answering."""
    bindir = os.path.dirname(sys.executable)
    proc = subprocess.Popen([os.path.join(bindir, "mlflow"), "server", "--backend-store-uri", f"sqlite:///{db}",
                             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"], cwd=db.parent,
                            stdout=open(db.parent / "server.log", "a"), stderr=subprocess.STDOUT,
                            start_new_session=True,
                            env={**os.environ, **no_mlflow_jobs(), "MLFLOW_DISABLE_TELEMETRY": "true",
                                 "PATH": bindir + os.pathsep + os.environ.get("PATH", "")})
    wait_for(f"http://127.0.0.1:{port}/health", proc, 120)
    return proc
