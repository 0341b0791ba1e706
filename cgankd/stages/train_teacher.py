"""train-teacher: the big network, on the real training set."""

from __future__ import annotations

import json
from typing import Any

from cgankd import store
from cgankd.base.io import write_json
from cgankd.base.tracker import NullTracker
from cgankd.compute import distributed
from cgankd.config import Config
from cgankd.models import count_params
from cgankd.stages.common import at, fit_metrics, new_model, prepared, setup, write_history
from cgankd.train.loop import fit


def run(cfg: Config, tracker: NullTracker | None = None) -> dict[str, Any]:
    tracker = tracker or NullTracker()
    rt = setup(cfg)
    data = prepared(cfg)
    model = new_model(cfg.teacher.arch, data, cfg.teacher.width, rt.device)
    res = fit(model, data, cfg.teacher, cfg.seed, "train-teacher",
              log=lambda s, row: tracker.log_metrics(row, step=s), runtime=rt)
    if not distributed.is_main():  # torchrun: rank 0 writes the outputs
        return {}
    path = at(cfg, "teacher")
    store.save_model(res.best, path, {"best_step": res.best_step})
    write_history(at(cfg, "teacher_history"), res.history)
    m = {"params": count_params(model), "best_step": res.best_step}
    m.update(fit_metrics(res, data))
    write_json(at(cfg, "teacher_metrics"), m)
    tracker.log_metrics(m)
    print("train-teacher:", json.dumps(m))
    return m
