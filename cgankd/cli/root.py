"""The servers (``cgankd serve``, ``cgankd ui``, ``cgankd team-stack``) refuse to run as root, as
PostgreSQL and Jupyter do: a bug in any of the libraries they run, reached from the network, would
otherwise hand the whole machine over. ``--allow-root`` (or ``CGANKD_ALLOW_ROOT=1``) is for a
container that is itself the boundary."""

from __future__ import annotations

import argparse
import os

from cgankd.base.errors import CgankdError

ALLOW_ROOT_ENV = "CGANKD_ALLOW_ROOT"


def add_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-root", action="store_true",
                   help=f"run as root all the same (or {ALLOW_ROOT_ENV}=1): for a container that is the boundary")


def refuse_root(args: argparse.Namespace, what: str) -> None:
    """Raise a one-line error when this process is root and neither the flag nor the variable allows it."""
    if getattr(os, "geteuid", lambda: 1)() != 0 or args.allow_root or os.environ.get(ALLOW_ROOT_ENV) == "1":
        return
    raise CgankdError(what, f"refuses to run as root (a server bug would hand the machine over): run it as an "
                      f"unprivileged user, or pass --allow-root ({ALLOW_ROOT_ENV}=1) in a container that is "
                      "itself the boundary")
