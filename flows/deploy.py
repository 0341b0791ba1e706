"""Serve the deployments declared in prefect.yaml from this one process (Prefect's ``serve``), for a
machine without a work pool or worker. With a work pool, use ``prefect deploy --all`` instead: both
read the same prefect.yaml, so the names, schedules and parameters are the same either way.

    python -m flows.deploy                                  # ./prefect.yaml, nightly at its cron
    python -m flows.deploy --cron "0 4 * * 1" -S tracking.promotion_margin=1.0
    prefect deployment run cgankd-pipeline/cgankd-nightly --watch     # a run now

``serve`` registers the deployments with the Prefect API (PREFECT_API_URL, e.g. a local
``prefect server start``) and runs their flow runs in subprocesses until stopped. A deployment with
its own ``pull:`` steps (cgankd-team-nightly: clone, dvc pull) needs a worker, so it is not served here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

CHECKOUT = Path(__file__).resolve().parent.parent / "prefect.yaml"  # beside flows/ in a checkout


def declared(prefect_file: str | Path) -> list[dict[str, Any]]:
    """The ``deployments:`` of a prefect.yaml, each with a name and an entrypoint (ValueError: what is wrong)."""
    path = Path(prefect_file)
    if not path.is_file():
        raise ValueError(f"{path}: no such prefect.yaml (pass --prefect-file; the cgankd repository has one at "
                         "its root)")
    try:
        deployments = (yaml.safe_load(path.read_text()) or {}).get("deployments") or []
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    for d in deployments:
        if not isinstance(d, dict) or not d.get("name") or not d.get("entrypoint"):
            raise ValueError(f"{path}: every deployment needs a name and an entrypoint, got {d!r}")
    return deployments


def build_deployments(prefect_file: str | Path = "prefect.yaml", cron: str | None = None,
                      params: str | None = None, overrides: list[str] | None = None) -> list[Any]:
    """The declared deployments as Prefect RunnerDeployments. ``cron`` replaces the schedules' cron,
    ``params`` / ``overrides`` the deployments' parameters of those names."""
    from prefect.flows import load_flow_from_entrypoint
    from prefect.schedules import Cron

    built = []
    for d in declared(prefect_file):
        if d.get("pull"):  # its pull steps run on a worker, not in this process
            continue
        parameters = dict(d.get("parameters") or {})
        if params is not None:
            parameters["params"] = params
        if overrides:
            parameters["overrides"] = list(overrides)
        schedules = [Cron(cron or s["cron"], timezone=s.get("timezone")) for s in d.get("schedules") or []]
        flow = load_flow_from_entrypoint(d["entrypoint"])
        built.append(flow.to_deployment(
            name=d["name"], description=d.get("description"), tags=d.get("tags"), parameters=parameters,
            schedules=schedules or None, concurrency_limit=d.get("concurrency_limit")))
    return built


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prefect-file", default=None,
                    help="the deployments (default: ./prefect.yaml, else the checkout's)")
    ap.add_argument("--cron", default=None, help="replace the scheduled deployments' cron")
    ap.add_argument("-p", "--params", default=None, help="params file for every deployment")
    ap.add_argument("-S", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    prefect_file = args.prefect_file or ("prefect.yaml" if Path("prefect.yaml").is_file() else CHECKOUT)
    params = str(Path(args.params).resolve()) if args.params else None
    try:
        deployments = build_deployments(prefect_file, args.cron, params, args.overrides)
    except ValueError as e:
        ap.exit(2, f"{ap.prog}: error: {e}\n")  # one line, exit 2, as every cgankd command
    from prefect import serve

    serve(*deployments)


if __name__ == "__main__":
    sys.exit(main())
