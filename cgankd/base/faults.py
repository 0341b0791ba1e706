"""Failpoints for the fault-injection tests (tests/test_faults.py): with
``CGANKD_FAILPOINT=<point>`` the process kills itself with SIGKILL (no cleanup, no ``finally``:
what a scheduler's kill or a power cut leaves) when it first reaches the named point:

- ``start``: a stage begins (its lock held, nothing written yet);
- ``half``: a progress bar (training, generation, scoring) passes half of its total;
- ``write``: an output is fully written to its temporary and not yet renamed into place.

With ``CGANKD_FAILPOINT_ONCE=<file>`` as well, only the first process to reach the point dies (it
creates the file first): a kill that a retry survives (tests/test_sweep.py kills a Dask worker).

Unset, a failpoint costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "CGANKD_FAILPOINT"
ONCE_ENV = "CGANKD_FAILPOINT_ONCE"
POINTS = ("start", "half", "write")


def point(name: str) -> None:
    if os.environ.get(ENV) == name:
        once = os.environ.get(ONCE_ENV)
        if once:
            try:
                os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return
        os.kill(os.getpid(), signal.SIGKILL)
