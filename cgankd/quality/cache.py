"""The real data's feature statistics, cached beside the extractor in a file named after the data
set and the extractor's weights (StudioGAN's way): train-extractor writes it, make-fakes reads it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cgankd.config import Config
from cgankd.data.prepared import Prepared
from cgankd.features.extractor import extract
from cgankd.quality.scores import RealStats, file_id, load_real_stats, real_stats, save_real_stats, windows
from cgankd.task import task_of
from cgankd.train.data import targets


def real_stats_path(cfg: Config, extractor_file: Path) -> Path:
    """Named after the dataset and the extractor (its weights' hash): a new extractor, or new
    data, never reads stale statistics."""
    m = cfg.quality
    windows_part = f"_w{m.n_windows}x{m.window:g}" if not task_of(cfg.task).categorical else ""
    return extractor_file.parent / f"real_stats_{cfg.source}_{file_id(extractor_file)}{windows_part}.npz"


def clear_real_stats(extractor_file: Path) -> None:
    """Forgets the statistics cached beside an extractor file (a new extractor's are not these)."""
    for old in extractor_file.parent.glob("real_stats_*.npz"):
        old.unlink()


def cached_real_stats(cfg: Config, extractor: Any, extractor_file: Path, data: Prepared) -> RealStats:
    """Real train + val features' statistics, read from the cache file or computed and cached."""
    path = real_stats_path(cfg, extractor_file)
    if path.is_file():
        return load_real_stats(path)
    meta = data.meta
    images = np.concatenate([data["train"].images, data["val"].images])
    labels = targets(np.concatenate([data["train"].labels, data["val"].labels]), meta).numpy()
    regression = not task_of(meta.task).categorical
    stats = real_stats(extract(extractor, images, quality=True), labels, None if regression else meta.num_classes,
                       windows(cfg.quality.n_windows, cfg.quality.window) if regression else None,
                       cfg.quality.window)
    save_real_stats(stats, path)
    return stats
