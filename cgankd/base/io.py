"""Atomic writes: every output goes to a temporary sibling first and is renamed into place.

A write that fails because the disk is full or the folder is not writable (ENOSPC, EACCES,
EROFS, ...) is a one-line error naming the output; the temporary is removed and the previous
output, if any, is left as it was."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cgankd.base import faults
from cgankd.base.errors import CgankdError

# the machine's fault, not the program's: reported in one line, never as a traceback
WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EFBIG}


def write_error(path: str | os.PathLike[str], exc: OSError) -> CgankdError:
    return CgankdError(str(path), f"cannot write: {exc.strerror or exc} (the previous output, if any, is unchanged)")


@contextlib.contextmanager
def _reported(path: str | os.PathLike[str]) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        if exc.errno in WRITE_ERRORS:
            raise write_error(path, exc) from None
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def clear_leftovers(path: Path) -> None:
    """Temporaries of ``path`` that a killed writer left behind (SIGKILL runs no ``finally``).
    Safe: one writer per output folder (cgankd/base/lock.py)."""
    old = path.with_name(f".{path.name}.old")
    if old.is_dir() and not path.exists():  # killed in the middle of atomic_dir's swap: put it back
        os.replace(old, path)
    for left in path.parent.glob(f".{path.name}.*"):
        if left.name.endswith((".tmp", ".old")):
            shutil.rmtree(left) if left.is_dir() and not left.is_symlink() else left.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    """Flush a file's or a folder's entries to the disk."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary file path next to ``path``; rename it onto ``path`` on success. ``mode``: the
    file's mode (default an output's usual one; 0o600 for a file that holds a secret)."""
    path = Path(path)
    with _reported(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        clear_leftovers(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        with _reported(path):
            yield tmp_path
            faults.point("write")
            os.chmod(tmp_path, 0o666 & ~_umask() if mode is None else mode)  # mkstemp makes 0600
            _fsync(tmp_path)  # the data on disk before the name points at it (power loss, not only a kill)
            os.replace(tmp_path, path)
            _fsync(path.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary directory; on success it replaces ``path`` as a whole."""
    path = Path(path)
    with _reported(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        clear_leftovers(path)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        with _reported(path):
            yield tmp
        faults.point("write")
        os.chmod(tmp, 0o777 & ~_umask())
        with _reported(path):
            for f in [*tmp.rglob("*"), tmp]:
                if f.is_dir() or f.is_file():
                    _fsync(f)
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
        _fsync(path.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def read_json(path: str | os.PathLike[str]) -> Any:
    return json.loads(Path(path).read_text())


def open_private(path: str | os.PathLike[str], append: bool = False) -> Any:
    """A text file for this user alone (0600, also when it existed with another mode), never opened
    through a symbolic link (O_NOFOLLOW: an attacker's link at the path is refused, not followed);
    truncated, or appended to. For secrets, logs that may quote them, backlogs and lock files."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "a" if append else "w")
