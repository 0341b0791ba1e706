"""A `cgankd serve` process on a free loopback port (used by the tests and the load benchmark)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, *extra: str, env: dict[str, str] | None = None,
                 timeout: float = 60.0, token: str | None = None, python: str = sys.executable,
                 cwd: str | None = None, attempts: int = 3) -> tuple[subprocess.Popen, str]:
    """`cgankd serve MODEL --port P`; returns (process, base url) once /healthz answers. ``token``:
    the management token (/reload), passed in the environment as an operator would; ``python``:
    the interpreter whose cgankd serves (another install's). A free port can be taken by another
    process before the server binds it (uvicorn then exits with 3): it tries another, ``attempts`` in all."""
    import httpx

    from cgankd.serve.management import TOKEN_ENV

    environ = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    environ.update({**({TOKEN_ENV: token} if token else {}), **(env or {})})
    for attempt in range(attempts):
        port = free_port()
        proc = subprocess.Popen([python, "-m", "cgankd", "serve", model, "--port", str(port), *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environ, cwd=cwd)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                    return proc, url
            except httpx.TransportError:
                time.sleep(0.2)
        if proc.poll() is None:
            proc.kill()
            raise RuntimeError("server did not answer /healthz in time")
        if proc.returncode != 3 or attempt == attempts - 1:  # 3: uvicorn could not start (the port, taken)
            raise RuntimeError(f"server exited {proc.returncode}: {proc.stdout.read()}")
    raise AssertionError("unreachable")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
