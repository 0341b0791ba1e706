"""Failpoints for the fault-injection tests (tests/test_faults.py): with
``CGANKD_FAILPOINT=<point>`` the process kills itself with SIGKILL (no cleanup, no ``finally``:
what a scheduler's kill or a power cut leaves) when it first reaches the named point:

- ``start``: a stage begins (its lock held, nothing written yet);
- ``half``: a progress bar (training, generation, scoring) passes half of its total;
- ``write``: an output is fully written to its temporary and not yet renamed into place.

With ``CGANKD_FAILPOINT_ONCE=<file>`` as well, only the first process to reach the point dies (it
creates the file first): a kill that a retry survives (tests/test_sweep.py kills a Dask worker).
``CGANKD_FAILPOINT_STAGE=<stage>`` limits it to one stage (run_stage names the stage running), and
``CGANKD_FAILPOINT_MODE=raise`` raises an OSError instead of the kill: an infrastructure failure the
process lives through (a lost disk or device), as the Prefect flow's retries see one (tests/test_flow.py).

Unset, a failpoint costs one dictionary lookup.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

ENV = "CGANKD_FAILPOINT"
ONCE_ENV = "CGANKD_FAILPOINT_ONCE"
STAGE_ENV = "CGANKD_FAILPOINT_STAGE"
MODE_ENV = "CGANKD_FAILPOINT_MODE"
POINTS = ("start", "half", "write")
_stage: list[str] = []  # the stage running in this process (run_stage pushes its name)


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    _stage.append(name)
    try:
        yield
    finally:
        _stage.pop()


def point(name: str) -> None:
    if os.environ.get(ENV) == name:
        only = os.environ.get(STAGE_ENV)
        if only and only not in _stage[-1:]:
            return
        once = os.environ.get(ONCE_ENV)
        if once:
            try:
                os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return
        if os.environ.get(MODE_ENV) == "raise":
            raise OSError(f"failpoint {name!r} ({ENV})")
        os.kill(os.getpid(), signal.SIGKILL)
