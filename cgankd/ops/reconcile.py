"""Killed runs reconciled: a run whose process is gone is marked KILLED, not left RUNNING forever.

Every run cgankd starts carries the pid and host of its process (tags ``cgankd.pid``,
``cgankd.host``). A SIGKILL, an OOM kill or a power cut gives the process no chance to end its
runs, so MLflow shows them RUNNING for good. At the start of every pipeline run, and with
``cgankd tracking-gc``, the experiment's RUNNING runs started on this host whose process no longer
exists are ended as KILLED, with the tag ``cgankd.reconciled`` saying when, why and by whom (the
way DVC and Prefect mark crashed runs).

What it cannot know: runs started on other hosts (their pid means nothing here) are left alone;
a pid reused by a new process keeps its run RUNNING (the safe direction).
"""

from __future__ import annotations

import datetime
import os
import socket
from typing import Any

PID_TAG, HOST_TAG, RECONCILED_TAG = "cgankd.pid", "cgankd.host", "cgankd.reconciled"


def process_tags() -> dict[str, str]:
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def gone(tags: dict[str, str]) -> bool:
    """Whether the run with these tags was started on this host by a process that no longer exists."""
    pid = tags.get(PID_TAG, "")
    return tags.get(HOST_TAG) == socket.gethostname() and pid.isdigit() and not alive(int(pid))


def reconcile(client: Any, experiment_id: str, by: str) -> list[str]:
    """Ends as KILLED the RUNNING runs of ``experiment_id`` started on this host by a process that
    is gone; returns their ids."""
    host, ended = socket.gethostname(), []
    runs = client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=5000)
    for run in runs:
        if not gone(run.data.tags):
            continue
        pid = run.data.tags[PID_TAG]
        when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        client.set_tag(run.info.run_id, RECONCILED_TAG, f"process {pid} on {host} was gone at {when}: "
                       f"marked KILLED by {by}")
        client.set_terminated(run.info.run_id, "KILLED")
        ended.append(run.info.run_id)
    return ended
