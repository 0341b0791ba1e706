"""Prefect deployments: the pipeline on a cron schedule (retraining; its register stage makes the
champion/challenger decision with ``tracking.promotion_margin``) and the promotion flow on demand.

    python flows/deploy.py                                   # nightly at 03:00, params.yaml
    python flows/deploy.py --cron "0 4 * * 1" -S tracking.promotion_margin=1.0
    prefect deployment run cgankd-pipeline/cgankd-nightly --watch     # a run now

`serve` registers both deployments with the Prefect API (PREFECT_API_URL, e.g. a local
`prefect server start`) and runs their flow runs in subprocesses until stopped.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline import pipeline  # noqa: E402
from promote import promotion  # noqa: E402

NAME = "cgankd-nightly"
PROMOTE = "cgankd-promote"
CRON = os.environ.get("CGANKD_CRON", "0 3 * * *")  # every night at 03:00


def build_deployment(cron: str = CRON, params: str = "params.yaml", overrides: list[str] | None = None):
    return pipeline.to_deployment(
        name=NAME, cron=cron, parameters={"params": params, "overrides": list(overrides or [])},
        tags=["cgankd", "retrain"],
        description="Retrain teacher, GAN, fakes and students; register; champion only beyond the margin.")


def build_promotion_deployment(params: str = "params.yaml", overrides: list[str] | None = None):
    return promotion.to_deployment(
        name=PROMOTE, parameters={"params": params, "overrides": list(overrides or [])},
        tags=["cgankd", "promotion"], description="Champion/challenger decision for a registered version.")


def main(argv: list[str] | None = None) -> None:
    from prefect import serve

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cron", default=CRON, help=f"schedule of the retraining (default {CRON!r})")
    ap.add_argument("-p", "--params", default="params.yaml")
    ap.add_argument("-S", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    params = str(Path(args.params).resolve())
    serve(build_deployment(args.cron, params, args.overrides),
          build_promotion_deployment(params, args.overrides))


if __name__ == "__main__":
    main()
