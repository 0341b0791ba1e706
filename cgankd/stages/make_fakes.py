"""make-fakes: generate per class (or per label on a grid), subsample with cDR-RS, filter with the
teacher, adjust labels; measure the fakes' quality before and after each step. What it writes and
says about them is ``make_fakes_report``."""

from __future__ import annotations

from typing import Any

import numpy as np

from cgankd import store
from cgankd.base.errors import CgankdError
from cgankd.base.io import atomic_path
from cgankd.base.tracker import NullTracker
from cgankd.config import Config
from cgankd.data.prepared import Meta
from cgankd.fakes.make import FakeSet, make_fakes
from cgankd.features.extractor import extract
from cgankd.quality.cache import cached_real_stats
from cgankd.quality.curve import read_curve
from cgankd.quality.relative import relative_score
from cgankd.quality.scores import label_score, quality, windows
from cgankd.quality.verdict import Verdict, judge
from cgankd.stages.common import at, prepared, setup, teacher_metric
from cgankd.stages.make_fakes_report import report
from cgankd.subsample.cdrrs import fit_cdrrs
from cgankd.task import task_of
from cgankd.train.data import targets


def step_quality(cfg: Config, fs: FakeSet, extractor: Any, real: Any,
                 meta: Meta) -> tuple[dict[str, dict[str, float]], dict[str, list[float]]]:
    """Quality of the unprocessed pool (``raw``: the GAN's own quality), of its subsets after each
    step, and of the ``final`` set the student trains on; label scores against the labels G was
    asked for."""
    regression = not task_of(meta.task).categorical
    args = (None if regression else meta.num_classes,
            windows(cfg.quality.n_windows, cfg.quality.window) if regression else None, cfg.quality.window)
    pool = fs.pool
    pool_f = extract(extractor, pool["images"], quality=True)
    pool_y = targets(pool["labels"], meta).numpy()
    steps = {"raw": np.ones(len(pool_y), bool)}
    steps.update({k: pool[k] for k in ("subsampled", "filtered", "subsampled_filtered") if k in pool})
    table, per_group = {}, {}
    for name, mask in steps.items():
        table[name], per_group[name] = quality(pool_f[mask], pool_y[mask], real, *args)
        table[name]["label_score"] = label_score(pool["teacher_out"][mask], pool["labels"][mask], meta)
    table["final"], per_group["final"] = quality(extract(extractor, fs.images, quality=True),
                                                 targets(fs.assigned, meta).numpy(), real, *args)
    table["final"]["label_score"] = label_score(fs.teacher_out, fs.assigned, meta)
    return table, per_group


def judge_fakes(cfg: Config, meta: Meta, table: dict[str, dict[str, float]]) -> Verdict:
    """The verdict on the raw fakes (the GAN's own quality, before subsampling and filtering),
    relative to the teacher's validation metric, with a budget hint from the GAN's quality curve."""
    higher = task_of(meta.task).higher_is_better
    reference = teacher_metric(cfg, meta)
    raw = table["raw"]["label_score"]
    rel = relative_score(raw, reference, higher)
    steps, curve, minutes = read_curve(at(cfg, "gan_quality"))
    unit = "%" if higher else f" {meta.label_unit}".rstrip()
    what = (f"teacher {'accuracy' if higher else 'MAE'} {raw:.2f}{unit} on fakes vs {reference:.2f}{unit} on real "
            "validation images")
    iterations = steps[-1] if steps else cfg.gan.iterations  # the last check is at the last iteration
    return judge(rel, cfg.min_relative_score, iterations, steps, curve, minutes, what)


def run(cfg: Config, tracker: NullTracker | None = None) -> dict[str, Any]:
    tracker = tracker or NullTracker()
    dev = setup(cfg, 2).device  # generate, subsample, filter and measure on the device
    data = prepared(cfg)
    meta = data.meta
    g = store.load(at(cfg, "gan"), "gan_generator", dev, "train-gan")
    if (g.num_classes is None) == task_of(meta.task).categorical:  # a CcGAN for classes, or the reverse
        raise CgankdError(str(at(cfg, "gan")), f"was trained for another task than {meta.task}; re-run train-gan")
    teacher = store.load(at(cfg, "teacher"), "image_model", dev, "train-teacher")
    judge = store.load(at(cfg, "filter_net"), "image_model", dev, "train-filter-net") if cfg.filter.net else None
    extractor = store.load(at(cfg, "extractor"), "extractor", dev, "train-extractor")
    ratio, dre_stats = None, {}
    if cfg.subsample_fakes:
        ratio, dre_stats, dre_hist = fit_cdrrs(cfg, g, extractor, data, cfg.seed + 3)
        store.save_dre(ratio.dre, at(cfg, "dre"))
        for row in dre_hist:
            tracker.log_metrics(row, step=row["step"])
    fs = make_fakes(cfg, g, teacher, meta, cfg.seed + 2, ratio, judge)
    with atomic_path(at(cfg, "fakes")) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, fake_images=fs.images, fake_labels=fs.labels, assigned_labels=fs.assigned,
                     teacher_score=fs.score)
    real = cached_real_stats(cfg, extractor, at(cfg, "extractor"), data)
    table, per_group = step_quality(cfg, fs, extractor, real, meta)
    return report(cfg, meta, fs, dre_stats, table, per_group, judge_fakes(cfg, meta, table), tracker)
