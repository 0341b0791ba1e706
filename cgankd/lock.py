"""One writer per output folder: a stage or a pipeline holds an exclusive lock on
``<out_dir>/.cgankd.lock`` while it runs; a second run on the same folder stops at once with one
line naming the holder (pid, host, command, start time).

The lock is the kernel's (``flock``): it is released when its holder exits, killed ones included,
so there is no stale lock to clean up. It is re-entrant within a process (a pipeline's stages run
under the pipeline's lock), and a stage process started by a holder (``cgankd repro`` -> ``dvc
repro`` -> ``cgankd <stage>``) is not the second writer: DVC's own repository lock keeps two
``dvc repro`` apart, and each stage process takes the folder's lock itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from cgankd.errors import CgankdError

NAME = ".cgankd.lock"
_held: dict[str, int] = {}  # resolved lock path -> depth, in this process


def holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        return "another process"
    return f"pid {info.get('pid')} on {info.get('host')} ({info.get('command')}, since {info.get('started')})"


@contextlib.contextmanager
def out_dir_lock(out_dir: str | os.PathLike[str]) -> Iterator[None]:
    """Hold ``out_dir``'s lock for the block, or stop with one line if another process holds it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = (out / NAME).resolve()
    key = str(path)
    if _held.get(key):
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CgankdError(str(out), f"in use by {holder(path)}; wait for it to finish or use another "
                              "out_dir") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(
            [Path(sys.argv[0]).name, *sys.argv[1:]])[:200], "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        except OSError:  # a full disk: the lock holds without the note; the stage's own write says why
            pass
        _held[key] = 1
        try:
            yield
        finally:
            _held.pop(key, None)
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the descriptor releases the lock
