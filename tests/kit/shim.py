"""A ``cgankd`` first on the suite's PATH, for the commands that tools start by name (``dvc repro``'s
stages, Prefect's workers, ``sh("cgankd", ...)``): each one is a new process forked from a server that
imported torch, MLflow and cgankd once (about 0.4 s instead of 4-5 s of imports a stage; ``dvc repro``
of the shrunken pipeline runs ten of them). The command's process is as the console script's would be:
its own pid, arguments, environment, folder, standard streams (the caller's, passed over the socket)
and exit code, a signal it dies of included; SIGTERM, SIGINT and SIGHUP to the shim reach it, and it
is killed when the shim dies. Without the server (another interpreter, a stale socket) the shim runs
the real console script.

The server is this module run as a script by :func:`path_with_shim` once per test process; it exits when
that process does (its stdin closes)."""

from __future__ import annotations

import atexit
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

PRELOAD = ["torch", "torchvision", "numpy", "onnx", "mlflow", "mlflow.onnx", "mlflow.pytorch", "cgankd.cli",
           "cgankd.pipeline.runner"]


def preloaded() -> list[str]:
    """The modules a fork server imports before it forks (this one's and kit's ``cgankd_forked``'s): torch,
    MLflow and every stage's module."""
    from cgankd.pipeline.spec import TABLE

    return [*PRELOAD, *(stage.module for stage in TABLE)]

SHIM = '''#!{python} -S
import json, os, signal, socket, struct, sys
try:
    s = socket.socket(socket.AF_UNIX)
    s.connect({sock!r})
except OSError:
    os.execv({python!r}, [{python!r}, {real!r}, *sys.argv[1:]])
msg = json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ)}}).encode()
socket.send_fds(s, [struct.pack("!I", len(msg)) + msg], [0, 1, 2])
f = s.makefile("rb")
pid = int(f.readline())
for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(sig, lambda n, _: os.kill(pid, n))
status = int(f.readline() or -signal.SIGKILL)
if status < 0:  # died of a signal: the shim dies of it too
    if -status not in (signal.SIGKILL, signal.SIGSTOP):
        signal.signal(-status, signal.SIG_DFL)
    os.kill(os.getpid(), -status)
sys.exit(status)
'''


def _recv(conn: socket.socket) -> tuple[dict, list[int]]:
    import json

    head, fds, _, _ = socket.recv_fds(conn, 4, 3)
    size = struct.unpack("!I", head)[0]
    body = b""
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            raise EOFError
        body += chunk
    return json.loads(body), fds


def _command(request: dict, fds: list[int]) -> None:
    """In the command's process: the caller's streams, folder and environment, then the CLI."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    # a new interpreter's signal handling, whatever the server inherited: a server started while its test
    # process ignored SIGINT (DVC's in-process stage runner does, for the length of a stage) would pass
    # SIG_IGN on to every command, and the test's SIGINT would not stop `cgankd run`
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    sys.stdin, sys.stdout, sys.stderr = (open(i, mode, closefd=False, buffering=1 if i else -1)
                                         for i, mode in ((0, "r"), (1, "w"), (2, "w")))
    sys.argv = ["cgankd", *request["argv"]]
    import random

    import numpy as np

    random.seed()  # as a new process's: the server's state is every command's otherwise
    np.random.seed()
    code = 1
    try:
        from cgankd.cli import main

        code = main(request["argv"]) or 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except OSError:
                pass
    os._exit(code)


def _watch(conn: socket.socket, request: dict, fds: list[int]) -> None:
    """In the watcher's process: fork the command, tell its pid, wait for it (killing it if the shim goes
    away), tell how it ended (a negative signal number when one killed it)."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    pid = os.fork()
    if pid == 0:
        conn.close()
        _command(request, fds)
    for fd in fds:
        os.close(fd)
    conn.sendall(f"{pid}\n".encode())
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if select.select([conn], [], [], 0.1)[0] and not conn.recv(1):  # the shim died
            os.kill(pid, signal.SIGKILL)
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    try:
        conn.sendall(f"{code}\n".encode())
    except OSError:
        pass
    os._exit(0)


def serve(path: str) -> None:
    """The fork server: preload, then one watcher per connection until stdin closes."""
    import importlib

    for name in preloaded():
        importlib.import_module(name)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # watchers are reaped by the kernel
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(64)
    print("ready", flush=True)
    while True:
        ready = select.select([listener, sys.stdin], [], [])[0]
        if sys.stdin in ready and not os.read(sys.stdin.fileno(), 1):
            return
        if listener in ready:
            conn, _ = listener.accept()
            try:
                request, fds = _recv(conn)
            except (OSError, EOFError, ValueError):
                conn.close()
                continue
            if os.fork() == 0:
                listener.close()
                _watch(conn, request, fds)
            conn.close()
            for fd in fds:
                os.close(fd)


_folder: Path | None = None


def path_with_shim() -> str:
    """PATH with the shim's folder first, then the venv's tools."""
    return f"{shim().parent}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"


def shim() -> Path:
    """The shim ``cgankd``, its server started on first use (once per process)."""
    global _folder
    if _folder is None:
        folder = Path(tempfile.mkdtemp(prefix="cgankd-shim-"))
        sock = str(folder / "s")
        server = subprocess.Popen([sys.executable, __file__, sock], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        atexit.register(server.kill)
        assert server.stdout.readline().strip() == b"ready", "the cgankd fork server did not start"
        real = str(Path(sys.executable).parent / "cgankd")
        shim = folder / "cgankd"
        shim.write_text(SHIM.format(python=sys.executable, sock=sock, real=real))
        shim.chmod(0o700)
        _folder = folder
    return _folder / "cgankd"


if __name__ == "__main__":
    serve(sys.argv[1])
