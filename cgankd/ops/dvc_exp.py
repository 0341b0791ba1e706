"""``dvc exp run`` as a first-class path: DVC runs each stage's command with ``DVC_EXP_NAME`` (the
experiment's name, given with ``-n`` or generated) and ``DVC_EXP_BASELINE_REV`` set, and no cgankd
parent run around it. The stage runs of one experiment then nest under one MLflow parent run named
after it, found by its tag (``cgankd.dvc_exp``) or created by the first stage that runs. It carries
every param, the experiment's name and baseline commit, and it is marked finished at once: it groups
the stage runs, which keep their own status. ``cgankd repro`` and ``cgankd run`` keep their own
parent (the environment's parent run id wins)."""

from __future__ import annotations

import os
from typing import Any

from cgankd.config import Config
from cgankd.ops.backlog import clean_params
from cgankd.ops.conflicts import experiment

NAME_ENV, BASELINE_ENV = "DVC_EXP_NAME", "DVC_EXP_BASELINE_REV"
TAG = "cgankd.dvc_exp"


def exp_parent(cfg: Config, tags: dict[str, str], errors: tuple[type[BaseException], ...]) -> str | None:
    """The run id of this ``dvc exp run``'s parent (None outside one, or when the server does not
    answer: the stage run then starts on its own, as under ``dvc repro``)."""
    name = os.environ.get(NAME_ENV)
    if not name:
        return None
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient()
        exp_id = experiment(client, cfg.tracking.experiment).experiment_id
        quoted = name.replace("\\", "\\\\").replace("'", "\\'")
        found = client.search_runs([exp_id], f"tags.`{TAG}` = '{quoted}'", max_results=1)
        if found:
            return str(found[0].info.run_id)
        return _create(client, exp_id, cfg, name, tags)
    except errors:
        return None


def _create(client: Any, exp_id: str, cfg: Config, name: str, tags: dict[str, str]) -> str:
    from mlflow.entities import Param

    run = client.create_run(exp_id, run_name=f"dvc-exp {name}", tags={
        **tags, "cgankd.kind": "pipeline", "cgankd.entry": "dvc-exp", TAG: name,
        "cgankd.dvc_baseline": os.environ.get(BASELINE_ENV, "")})
    client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in clean_params(cfg.flat()).items()])
    client.set_terminated(run.info.run_id, "FINISHED")
    return str(run.info.run_id)
