"""train-extractor: the network whose feature space cDR-RS and the quality metrics use, trained
on the real data only (never downloaded weights), plus the cached real-data statistics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from cgankd.config import Config
from cgankd.data.prepared import Prepared
from cgankd.features.extractor import TRAINERS, extract, extractor_metrics, save_extractor
from cgankd.io import write_json
from cgankd.models import count_params
from cgankd.quality.scores import RealStats, file_id, load_real_stats, real_stats, save_real_stats, windows
from cgankd.stages.common import prepared, setup, write_history
from cgankd.stages.registry import STAGES
from cgankd.tracking import NullTracker
from cgankd.train.data import targets


def real_stats_path(cfg: Config, extractor_file: Path) -> Path:
    """Named after the dataset and the extractor (its weights' hash): a new extractor, or new
    data, never reads stale statistics."""
    m = cfg.quality
    windows_part = f"_w{m.n_windows}x{m.window:g}" if cfg.task == "regression" else ""
    return extractor_file.parent / f"real_stats_{cfg.source}_{file_id(extractor_file)}{windows_part}.npz"


def cached_real_stats(cfg: Config, extractor: Any, extractor_file: Path, data: Prepared) -> RealStats:
    """Real train + val features' statistics, read from the cache file or computed and cached."""
    path = real_stats_path(cfg, extractor_file)
    if path.is_file():
        return load_real_stats(path)
    meta = data.meta
    images = np.concatenate([data["train"].images, data["val"].images])
    labels = targets(np.concatenate([data["train"].labels, data["val"].labels]), meta).numpy()
    regression = meta.task == "regression"
    stats = real_stats(extract(extractor, images), labels, None if regression else meta.num_classes,
                       windows(cfg.quality.n_windows, cfg.quality.window) if regression else None,
                       cfg.quality.window)
    save_real_stats(stats, path)
    return stats


@STAGES.register("train-extractor")
def run(cfg: Config, tracker: NullTracker | None = None) -> dict[str, Any]:
    tracker = tracker or NullTracker()
    setup(cfg, 5)
    data = prepared(cfg)
    model, spec, history = TRAINERS.get(data.meta.task)(cfg, data)
    out = cfg.path("extractor")
    for old in out.glob("real_stats_*.npz"):  # statistics of a previous extractor
        old.unlink()
    save_extractor(model, spec, out / "model.pt")
    write_history(out / "history.csv", history)
    cached_real_stats(cfg, model, out / "model.pt", data)
    m = {"kind": spec["kind"], "params": count_params(model), **extractor_metrics(model, data)}
    write_json(cfg.path("metrics", "extractor.json"), m)
    tracker.log_metrics(m)
    tracker.log_artifact(out / "history.csv")
    print("train-extractor:", json.dumps(m))
    return m
