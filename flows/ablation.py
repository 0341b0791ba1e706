"""Prefect flow for the fake-processing ablation (``cgankd ablate``): the same function, so the
flow, the CLI and the README table are one implementation.

    python flows/ablation.py --seeds 0 1 2 -S task=regression
"""

from __future__ import annotations

import argparse
from typing import Any

from prefect import flow

from cgankd.sweeps.ablation import VARIANTS, run_ablation
from cgankd.sweeps.jobs import Cluster


@flow(name="cgankd-ablation", log_prints=True)
def ablation(params: str = "params.yaml", overrides: list[str] | None = None, seeds: list[int] | None = None,
             variants: list[str] | None = None, work: str = "artifacts/ablation", reuse: bool = False,
             resume: bool = True, workers: int = 0, address: str | None = None) -> dict[str, Any]:
    """Returns the results (rows per seed and variant, NOKD baselines, MLflow parent run id).
    ``workers`` / ``address``: the seeds fan out over a Dask cluster."""
    return run_ablation(params, list(overrides or []), list(seeds or [0, 1, 2]), list(variants or VARIANTS),
                        work, reuse, resume, cluster=Cluster(workers, address))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("-S", "--set", dest="overrides", action="append", default=[])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--work", default="artifacts/ablation")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--address", default=None)
    a = ap.parse_args()
    ablation(overrides=a.overrides, seeds=a.seeds, work=a.work, workers=a.workers, address=a.address)
