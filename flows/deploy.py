"""Prefect deployment of the pipeline flow with a cron schedule.

    python flows/deploy.py            # serve the deployment (needs a Prefect API / server)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline import pipeline  # noqa: E402

NAME = "cgankd-nightly"
CRON = os.environ.get("CGANKD_CRON", "0 3 * * *")  # every night at 03:00


def build_deployment(cron: str = CRON, params: str = "params.yaml", overrides: list[str] | None = None):
    return pipeline.to_deployment(
        name=NAME, cron=cron, parameters={"params": params, "overrides": list(overrides or [])},
        tags=["cgankd", "retrain"], description="Retrain teacher, GAN, fakes and students; register.")


if __name__ == "__main__":
    from prefect import serve

    serve(build_deployment())
