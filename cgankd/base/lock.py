"""One writer per output folder: a stage or a pipeline holds an exclusive lock on
``<out_dir>/.cgankd.lock`` while it runs; a second run on the same folder stops at once with one
line naming the holder (pid, host, command, start time).

The lock is the kernel's (``flock``): it is released when its holder exits, killed ones included,
so there is no stale lock to clean up. It is re-entrant within a process (a pipeline's stages run
under the pipeline's lock), and a stage process started by a holder (``cgankd repro`` -> ``dvc
repro`` -> ``cgankd <stage>``) is not the second writer: DVC's own repository lock keeps two
``dvc repro`` apart, and each stage process takes the folder's lock itself.

The lock file is opened without following a link and must be a plain file with one link: a
symlink or hard link planted at its name (to make the holder note overwrite another file) stops
the run with one line. The note is written in place, padded to a fixed size: never truncated.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from cgankd.base.errors import CgankdError

NAME = ".cgankd.lock"
NOTE = 512  # bytes of the holder note, padded with spaces
_held: dict[str, int] = {}  # resolved lock path -> depth, in this process


def holder(path: Path) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd) as f:
            info = json.loads(f.read(NOTE).strip() or "{}")
    except (OSError, json.JSONDecodeError):
        return "another process"
    return f"pid {info.get('pid')} on {info.get('host')} ({info.get('command')}, since {info.get('started')})"


@contextlib.contextmanager
def out_dir_lock(out_dir: str | os.PathLike[str]) -> Iterator[None]:
    """Hold ``out_dir``'s lock for the block, or stop with one line if another process holds it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out.resolve() / NAME  # the folder resolved, the file itself never followed
    key = str(path)
    if _held.get(key):
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:  # ELOOP: a symbolic link at the lock's name
        raise CgankdError(str(path), f"cannot be opened as the folder's lock ({os.strerror(exc.errno)}); remove it "
                          "if it is not a plain file") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            raise CgankdError(str(path), "is not a plain file of its own (a hard link?); remove it")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CgankdError(str(out), f"in use by {holder(path)}; wait for it to finish or use another "
                              "out_dir") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(
            [Path(sys.argv[0]).name, *sys.argv[1:]])[:200], "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        try:
            os.pwrite(fd, json.dumps(info).encode()[:NOTE].ljust(NOTE), 0)
        except OSError:  # a full disk: the lock holds without the note; the stage's own write says why
            pass
        _held[key] = 1
        try:
            yield
        finally:
            _held.pop(key, None)
            with contextlib.suppress(OSError):
                os.pwrite(fd, b" " * NOTE, 0)
    finally:
        os.close(fd)  # closing the descriptor releases the lock
