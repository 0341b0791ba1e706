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
- a tracking server (``http(s)://``, e.g. the team stack's MLflow on PostgreSQL) with a Prefect server
  (``PREFECT_API_URL``, which the team stack's client.env sets): one slot of Prefect's global
  concurrency limit ``cgankd-registry`` (limit 1, made when missing), held under a lease that the
  holder renews, so a killed holder frees it when its lease runs out (``LEASE_S``);
- a tracking server without a Prefect server: no lock to take (``held`` is False); half-made
  versions are still skipped everywhere, but not deleted, since a concurrent register may be making
  them, and a promotion whose alias move collides with another's is decided again (model_registry.py
  ``_promote_unlocked``).

Either way a promotion killed between the ONNX version's alias and its PyTorch twin's is repaired by
the next promotion of that version.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cgankd.base.errors import CgankdError
from cgankd.base.redact import redact

COMPLETE_TAG = "test_metric"  # written last: a version without it is half-made
SERVER_LIMIT = "cgankd-registry"  # Prefect's global concurrency limit that serialises a tracking server's registry
LEASE_S = 60.0
_held: dict[str, int] = {}  # lock path -> depth in this process (register holds it around promote)


def lock_path(uri: str) -> Path | None:
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        return db.with_name(db.name + ".registry-lock")
    return None


@contextlib.contextmanager
def _server_slot() -> Iterator[None]:
    """The one slot of Prefect's ``cgankd-registry`` limit (waits for it)."""
    from prefect.client.orchestration import get_client
    from prefect.concurrency.sync import concurrency
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    try:
        with get_client(sync_client=True) as client:
            try:
                client.read_global_concurrency_limit_by_name(SERVER_LIMIT)
            except ObjectNotFound:  # made here, once per server
                with contextlib.suppress(ObjectAlreadyExists):  # by another first holder meanwhile
                    client.upsert_global_concurrency_limit_by_name(SERVER_LIMIT, 1)
    except Exception as exc:  # noqa: BLE001  (unreachable, refused credentials: one line)
        raise CgankdError("PREFECT_API_URL", f"the registry's lock on a tracking server is a slot of the Prefect "
                          f"server at {redact(os.environ.get('PREFECT_API_URL', ''))}, which did not give it "
                          f"({type(exc).__name__}); start that server, or unset PREFECT_API_URL to run without "
                          "a lock") from None
    with concurrency(SERVER_LIMIT, occupy=1, strict=True, lease_duration=LEASE_S):
        yield


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive flock on ``path`` (waits for the holder; released when the descriptor closes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def registry_lock(uri: str) -> Iterator[bool]:
    """Holds the registry's lock while the block runs (again in this process: at once); yields whether
    there is one to hold."""
    path = lock_path(uri)
    server = path is None and uri.startswith(("http://", "https://")) and bool(os.environ.get("PREFECT_API_URL"))
    if path is None and not server:
        yield False
        return
    key = f"server:{uri}" if path is None else str(path.resolve())
    if _held.get(key):
        _held[key] += 1
        try:
            yield True
        finally:
            _held[key] -= 1
        return
    with _server_slot() if path is None else _file_lock(path):
        _held[key] = 1
        try:
            yield True
        finally:
            _held.pop(key, None)


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
