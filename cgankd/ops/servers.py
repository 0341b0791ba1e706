"""Starting and stopping the servers cgankd runs as child processes (the team stack's MLflow, Prefect
and WebDAV servers, the tests' live servers): each in its own process group, logged to a file,
waited for until it answers; and the one line that says why a command it ran failed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from cgankd.base.errors import CgankdError


def bin_path(name: str) -> str:
    return os.path.join(os.path.dirname(sys.executable), name)


def last_line(res: subprocess.CompletedProcess) -> str:
    """A failed command's last line of output (stderr first): the error, for a one-line message."""
    return ((res.stderr or res.stdout).strip().splitlines() or ["no output"])[-1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float, what: str, any_status: bool = False) -> None:
    """Until ``url`` answers 200 (``any_status``: any HTTP answer, a 401 of a server that asks for
    credentials included), or ``proc`` exits, or ``timeout`` s pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CgankdError(what, f"exited with code {proc.returncode} while starting (see its log)")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except urllib.error.HTTPError:
            if any_status:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise CgankdError(what, f"did not answer at {url} within {timeout:.0f} s (see its log)")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the PID (its process group: the server's own children go too), then SIGKILL."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
