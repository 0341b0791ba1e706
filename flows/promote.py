"""Prefect flow: the champion/challenger decision for a registered version (the same function
as `cgankd promote` and the register stage).

    python flows/promote.py                 # decide on the newest version with params.yaml's margin
"""

from __future__ import annotations

import json
from typing import Any

from prefect import flow

from cgankd.config import load_config
from cgankd.tracking import promote


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
    promotion()
