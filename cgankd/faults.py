"""Failpoints for the fault-injection tests (tests/test_faults.py): with
``CGANKD_FAILPOINT=<point>`` the process kills itself with SIGKILL (no cleanup, no ``finally``:
what a scheduler's kill or a power cut leaves) when it first reaches the named point:

- ``start``: a stage begins (its lock held, nothing written yet);
- ``half``: a progress bar (training, generation, scoring) passes half of its total;
- ``write``: an output is fully written to its temporary and not yet renamed into place.

Unset, a failpoint costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "CGANKD_FAILPOINT"
POINTS = ("start", "half", "write")


def point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
