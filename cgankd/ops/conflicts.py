"""Two clients writing the same new row of a tracking store at once.

MLflow writes an experiment tag or a model alias as an upsert (SQLAlchemy ``merge``: read, then
insert or update). When two pipelines of a team write the same new key at the same moment, both
read "absent", both insert, and the store's unique constraint refuses the second: MLflow answers
BAD_REQUEST ("duplicate key value violates unique constraint" on PostgreSQL, "UNIQUE constraint
failed" on sqlite). That is not an outage and not a bad input: the same write, made again, finds
the row and updates it. Creating an experiment has the same race, and ``mlflow.set_experiment``
handles it by returning the experiment *without* making it the active one (MLflow 3.17), so the
next run would land in the Default experiment: :func:`experiment` resolves it itself.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
ATTEMPTS = 5
_UNIQUE = re.compile(r"unique constraint|duplicate key|integrityerror", re.IGNORECASE)


def conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is a store refusing a concurrent insert of the same key (retrying is safe)."""
    from mlflow.exceptions import MlflowException

    if not isinstance(exc, MlflowException):
        return False
    code = getattr(exc, "error_code", "")
    return code == "RESOURCE_ALREADY_EXISTS" or (code == "BAD_REQUEST" and bool(_UNIQUE.search(str(exc))))


def pause(attempt: int) -> None:
    """A short random wait, growing with ``attempt``, so that two retrying clients fall apart."""
    time.sleep(random.uniform(0.05, 0.2) * (attempt + 1))


def retry_conflict(write: Callable[..., T], *args: Any) -> T:
    """``write(*args)``, made again after a concurrent-insert conflict (at most ``ATTEMPTS`` times);
    any other error, and the last conflict, is raised."""
    for attempt in range(ATTEMPTS):
        try:
            return write(*args)
        except Exception as exc:
            if attempt == ATTEMPTS - 1 or not conflict(exc):
                raise
            pause(attempt)
    raise AssertionError("unreachable")


def experiment(client: Any, name: str) -> Any:
    """Experiment ``name`` (MLflow's entity, with its tags), created when missing; when another
    client creates it at the same moment, the one it created."""
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp
    try:
        return client.get_experiment(client.create_experiment(name))
    except MlflowException as exc:
        if not conflict(exc):
            raise
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp
