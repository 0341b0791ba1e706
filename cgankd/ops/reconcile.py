"""Killed runs reconciled: a run whose process is gone is marked KILLED, not left RUNNING forever.

Every run cgankd starts carries the pid and host of its process (tags ``cgankd.pid``,
``cgankd.host``). A SIGKILL, an OOM kill or a power cut gives the process no chance to end its
runs, so MLflow shows them RUNNING for good. At the start of every pipeline run, and with
``cgankd tracking-gc``, the experiment's RUNNING runs started on this host whose process no longer
exists are ended as KILLED, with the tag ``cgankd.reconciled`` saying when, why and by whom (the
way DVC and Prefect mark crashed runs).

A process is named by more than its host and pid (tag ``cgankd.process``): the boot, the pid
namespace and the process's start time, so containers that share a hostname (another pid namespace:
left alone) and a pid reused since (another start time: gone) are told apart. Runs started on other
hosts or in other namespaces are left alone; runs of an earlier cgankd (no ``cgankd.process``) are
judged by host and pid as before.
"""

from __future__ import annotations

import datetime
import os
import socket
from typing import Any

PID_TAG, HOST_TAG, RECONCILED_TAG = "cgankd.pid", "cgankd.host", "cgankd.reconciled"
PROCESS_TAG = "cgankd.process"  # boot id / pid namespace / pid / start time


def _read(path: str, link: bool = False) -> str:
    """A /proc file's text (or a namespace link's target); '?' where it cannot be read."""
    try:
        return os.readlink(path) if link else open(path).read().strip()
    except OSError:
        return "?"


def start_time(pid: int) -> str:
    """The process's start (clock ticks since boot), or '' when there is no such process here."""
    stat = _read(f"/proc/{pid}/stat")
    return stat.rsplit(")", 1)[1].split()[19] if ")" in stat else ""


def identity(pid: int) -> str:
    return "/".join((_read("/proc/sys/kernel/random/boot_id"), _read("/proc/self/ns/pid", link=True), str(pid),
                     start_time(pid)))


def process_tags() -> dict[str, str]:
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname(), PROCESS_TAG: identity(os.getpid())}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def gone(tags: dict[str, str]) -> bool:
    """Whether the run with these tags was started on this host, in this boot and pid namespace, by a
    process that no longer exists (its pid gone, or taken by a process started later)."""
    pid = tags.get(PID_TAG, "")
    if tags.get(HOST_TAG) != socket.gethostname() or not pid.isdigit():
        return False
    recorded = tags.get(PROCESS_TAG, "").split("/")
    if len(recorded) != 4:  # a run of an earlier cgankd
        return not alive(int(pid))
    here = identity(int(pid)).split("/")
    return recorded[:2] == here[:2] and recorded[3] != here[3]


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
