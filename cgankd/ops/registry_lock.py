"""Registration and promotion one at a time, and half-made versions cleaned up.

A student is registered in steps (cgankd/ops/tracking.py ``_register``): the ONNX version, the
PyTorch version, the tags that pair them (``pytorch_version`` / ``onnx_version``), and last the
``test_metric`` tag, which makes the version complete. ``promote``, the champion lookup and
``cgankd serve`` only take complete versions, so a register killed at any step leaves nothing
they would pick; the next ``register`` deletes what the killed one left (the ONNX version without
``test_metric`` and the PyTorch version of the same MLflow run). Only versions made by a cgankd
register run that did not finish and whose process is gone are deleted: a version someone made
by hand, or one a live register is making, is left alone.

Promotions are serialised and re-read the champion under the lock: two at once end with the
better version as champion, whatever their order. The lock:

- a sqlite store (``sqlite:///path``): an exclusive ``flock`` on ``<db>.registry-lock`` beside the
  database, released by the kernel when its holder exits, killed ones included (no stale lock);
- a tracking server (``http(s)://``, e.g. the team stack's MLflow on PostgreSQL): the client does
  not reach the database, so there is no lock to take (``held`` is False); half-made versions are
  still skipped everywhere, but not deleted, since a concurrent register may be making them, and
  a promotion whose alias move collides with another's is decided again (model_registry.py
  ``_promote_unlocked``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

COMPLETE_TAG = "test_metric"  # written last: a version without it is half-made
_held: dict[str, int] = {}  # lock path -> depth in this process (register holds it around promote)


def lock_path(uri: str) -> Path | None:
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        return db.with_name(db.name + ".registry-lock")
    return None


@contextlib.contextmanager
def registry_lock(uri: str) -> Iterator[bool]:
    """Holds the registry's lock while the block runs; yields whether there is one to hold."""
    path = lock_path(uri)
    if path is None:
        yield False
        return
    key = str(path.resolve())
    if _held.get(key):
        _held[key] += 1
        try:
            yield True
        finally:
            _held[key] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits for the other holder; released when fd closes
        _held[key] = 1
        try:
            yield True
        finally:
            _held.pop(key, None)
    finally:
        os.close(fd)


def complete(mv: Any) -> bool:
    return COMPLETE_TAG in mv.tags


def clean_half_made(client: Any, name: str, held: bool) -> list[str]:
    """Deletes the versions a killed register left (only while the lock is held). Returns what
    it deleted, e.g. ``["cgankd-objects v3", "cgankd-objects-pytorch v3"]``."""
    if not held:
        return []
    deleted: list[str] = []
    for mv in _versions(client, name):
        if complete(mv) or not _killed_register(client, mv.run_id):
            continue
        for twin in _pytorch_versions_of_run(client, name, mv.run_id, str(mv.version)):
            client.delete_model_version(f"{name}-pytorch", twin)
            deleted.append(f"{name}-pytorch v{twin}")
        client.delete_model_version(name, mv.version)
        deleted.append(f"{name} v{mv.version}")
    return deleted


def _versions(client: Any, name: str) -> list[Any]:
    """The registered model's versions; none when it does not exist yet."""
    from mlflow.exceptions import MlflowException

    try:
        return client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return []


def _killed_register(client: Any, run_id: str | None) -> bool:
    """Whether ``run_id`` is a cgankd register run that ended without finishing (killed, failed,
    or RUNNING with its process gone)."""
    from mlflow.exceptions import MlflowException

    from cgankd.ops.reconcile import gone

    try:
        run = client.get_run(run_id) if run_id else None
    except MlflowException:
        return False
    if run is None or run.data.tags.get("cgankd.stage") != "register" or run.info.status == "FINISHED":
        return False
    return run.info.status != "RUNNING" or gone(run.data.tags)


def _pytorch_versions_of_run(client: Any, name: str, run_id: str | None, version: str) -> list[str]:
    if not run_id:
        return []
    twins = _versions(client, f"{name}-pytorch")
    return [t.version for t in twins if t.run_id == run_id and t.tags.get("onnx_version") in (None, version)]
