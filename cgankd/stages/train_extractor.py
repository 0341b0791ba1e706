"""train-extractor: the network whose feature space cDR-RS and the quality metrics use, trained
on the real data only (never downloaded weights), plus the cached real-data statistics."""

from __future__ import annotations

import json
from typing import Any

from cgankd import store
from cgankd.base.io import write_json
from cgankd.base.tracker import NullTracker
from cgankd.compute import distributed
from cgankd.config import Config
from cgankd.features.extractor import TRAINERS, extractor_metrics
from cgankd.models import count_params
from cgankd.quality.cache import cached_real_stats, clear_real_stats
from cgankd.stages.common import at, prepared, setup, write_history
from cgankd.subsample.holdout import extractor_data


def run(cfg: Config, tracker: NullTracker | None = None) -> dict[str, Any]:
    tracker = tracker or NullTracker()
    rt = setup(cfg, 5)
    data = prepared(cfg)
    fit_data = extractor_data(cfg, data)  # without the real images cDR-RS fits its ratio on
    model, spec, history = TRAINERS.get(data.meta.task)(cfg, fit_data, rt)
    if not distributed.is_main():  # torchrun: rank 0 writes the outputs
        return {}
    path = at(cfg, "extractor")
    clear_real_stats(path)  # statistics of a previous extractor
    store.save_extractor(model, spec, path)
    write_history(at(cfg, "extractor_history"), history)
    cached_real_stats(cfg, model, path, data)
    m = {"kind": spec["kind"], "params": count_params(model), "n_train": len(fit_data["train"]),
         **extractor_metrics(model, data)}
    write_json(at(cfg, "extractor_metrics"), m)
    tracker.log_metrics(m)
    print("train-extractor:", json.dumps(m))
    return m
