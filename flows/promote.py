"""Prefect flow: the champion/challenger decision for a registered version (the same function
as `cgankd promote` and the register stage).

    python flows/promote.py                 # decide on the newest version with params.yaml's margin
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from prefect import flow

from cgankd.config import load_config
from cgankd.ops.model_registry import promote


@flow(name="cgankd-promote", log_prints=True)
def promotion(name: str | None = None, version: int | None = None, margin: float | None = None,
              params: str = "params.yaml", overrides: list[str] | None = None, force: bool = False) -> dict[str, Any]:
    """Champion only if the version's test metric beats the champion's by more than ``margin``
    (default ``tracking.promotion_margin``); otherwise ``challenger`` with the reason as a tag."""
    cfg = load_config(params, list(overrides or []), runtime=False)
    result = promote(name or cfg.model_name, version,
                     cfg.tracking.promotion_margin if margin is None else margin, force)
    print("promotion:", json.dumps(result))
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default=None, help="registered model (default: tracking.model_name for the task)")
    ap.add_argument("--version", type=int, default=None, help="default: the newest complete version")
    ap.add_argument("--margin", type=float, default=None, help="default: tracking.promotion_margin")
    ap.add_argument("--force", action="store_true", help="make it champion whatever the metrics say")
    ap.add_argument("-p", "--params", default="params.yaml")
    ap.add_argument("-S", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    a = ap.parse_args()
    promotion(a.name, a.version, a.margin, a.params, a.overrides, a.force)
