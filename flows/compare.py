"""Prefect flow for the KD comparison table (``cgankd compare``): the same function, so the flow,
the CLI and the README table are one implementation.

    python flows/compare.py --pairs resnet20:convnet_s resnet20:resnet8 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
from typing import Any

from prefect import flow

from cgankd.sweeps.comparison import DEFAULT_METHODS, parse_pairs, run_compare
from cgankd.sweeps.jobs import Cluster


@flow(name="cgankd-compare", log_prints=True)
def compare(params: str = "params.yaml", overrides: list[str] | None = None, pairs: list[str] | None = None,
            methods: list[str] | None = None, seeds: list[int] | None = None, work: str = "artifacts/compare",
            reuse: bool = False, resume: bool = True, workers: int = 0, address: str | None = None) -> dict[str, Any]:
    """Returns the results (a row per seed, pair and method; the MLflow parent run id). ``workers`` /
    ``address``: the student jobs fan out over a Dask cluster (a subflow with Prefect's DaskTaskRunner)."""
    return run_compare(params, list(overrides or []), parse_pairs(list(pairs or ["resnet20:convnet_s"])),
                       list(methods or DEFAULT_METHODS), list(seeds or [0, 1, 2]), work, reuse, resume,
                       Cluster(workers, address))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("-S", "--set", dest="overrides", action="append", default=[])
    ap.add_argument("--pairs", nargs="+", default=["resnet20:convnet_s"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--work", default="artifacts/compare")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--address", default=None)
    a = ap.parse_args()
    compare(overrides=a.overrides, pairs=a.pairs, seeds=a.seeds, work=a.work, workers=a.workers, address=a.address)
