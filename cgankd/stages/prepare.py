"""prepare: a data source -> the canonical prepared format (+ a preview grid)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from cgankd.base.errors import CgankdError
from cgankd.base.tracker import NullTracker
from cgankd.config import RESOLUTIONS, Config
from cgankd.config.layout import Layout
from cgankd.data.budget import split_budget, target_resolution
from cgankd.data.prepared import Meta, Prepared, Split, check_images, save_prepared
from cgankd.data.preview import save_grid
from cgankd.data.sources import SOURCES
from cgankd.task import task_of


def resize(images: np.ndarray, res: int) -> np.ndarray:
    if images.shape[-1] == res and images.shape[-2] == res:
        return images
    mode = "L" if images.shape[1] == 1 else "RGB"
    out = np.empty((len(images), images.shape[1], res, res), np.uint8)
    for i, img in enumerate(images):
        arr = img[0] if mode == "L" else img.transpose(1, 2, 0)
        small = np.asarray(Image.fromarray(arr, mode).resize((res, res), Image.BILINEAR))
        out[i] = small[None] if mode == "L" else small.transpose(2, 0, 1)
    return out


def build(cfg: Config) -> Prepared:
    source = cfg.source
    pool = SOURCES.get(source)(cfg)
    subject = f"data.source={source}" + (f" ({cfg.data.root})" if cfg.data.root else "")
    check_images(pool.train_x, pool.train_y, subject, pool.task)
    check_images(pool.test_x, pool.test_y, subject, pool.task)
    if pool.val_x is None:
        tr, va = split_budget(pool.train_y, pool.task, cfg.data.n_per_class, cfg.data.n_val_per_class,
                              cfg.data.seed, subject)
        train, val = Split(pool.train_x[tr], pool.train_y[tr]), Split(pool.train_x[va], pool.train_y[va])
    else:
        train, val = Split(pool.train_x, pool.train_y), Split(pool.val_x, pool.val_y)
    test = Split(pool.test_x, pool.test_y)
    if train.images.shape[2] != train.images.shape[3]:
        raise CgankdError(subject, f"images must be square, got {train.images.shape[2]}x{train.images.shape[3]}")
    res = target_resolution(train.images.shape[-1], cfg.data.resolution)
    if res not in RESOLUTIONS:
        raise CgankdError("data.resolution", f"must be one of {', '.join(map(str, RESOLUTIONS))}, got {res}")
    train, val, test = (Split(resize(s.images, res), s.labels) for s in (train, val, test))
    if not task_of(pool.task).categorical:
        labelled = np.concatenate([train.labels, val.labels])  # the range of all labelled data
        lo, hi = float(labelled.min()), float(labelled.max())
        if source == "rc":
            lo, hi = 0.0, 90.0
        if hi - lo <= 0:
            raise CgankdError(subject, f"label range has zero width ({lo} to {hi})")
    else:
        lo, hi = 0.0, 1.0
    _, c, h, _ = train.images.shape
    meta = Meta(task=pool.task, source=source, channels=int(c), resolution=int(h),
                classes=list(pool.classes), label_range=[lo, hi], label_unit=pool.label_unit,
                provenance={**pool.provenance, "source": source, "data_seed": cfg.data.seed,
                            "n_per_class": cfg.data.n_per_class})
    return Prepared(meta, {"train": train, "val": val, "test": test})


def run(cfg: Config, tracker: NullTracker | None = None) -> dict[str, Any]:
    tracker = tracker or NullTracker()
    data = build(cfg)
    lay = Layout(cfg)
    out = lay.path("prepared")
    save_prepared(data, out)
    save_grid(lay.path("data_grid"), data["train"].images, data["train"].labels, data.meta.task, data.meta.classes)
    counts = {f"n_{k}": len(v) for k, v in data.splits.items()}
    tracker.log_metrics(counts)
    labels = data["train"].labels
    print(f"prepare: {data.meta.source} {data.meta.task}, train {counts['n_train']} / val "
          f"{counts['n_val']} / test {counts['n_test']}, {data.meta.channels}x{data.meta.resolution}"
          f"x{data.meta.resolution}, labels {np.unique(labels).size} distinct -> {out}")
    return {"prepared": str(out), **counts}
