"""The real images cDR-RS fits its density ratio on: a seeded fraction of the training set that the
feature extractor never trains on.

A ratio fitted on features of images the extractor has memorised measures memorisation, not
quality: those features sit where no fake ever lands, so every fake gets a ratio near 0 and
rejection sampling keeps almost nothing. Features of unseen real images are what a good fake
should look like.
"""

from __future__ import annotations

import numpy as np

from cgankd.config import Config
from cgankd.data.prepared import Prepared, Split
from cgankd.task import task_of

SEED_OFFSET = 11


def holdout_mask(labels: np.ndarray, fraction: float, seed: int, classes: int | None) -> np.ndarray:
    """True for the held-out images: ``round(fraction * n_c)`` of each class (at least one, and
    never a whole class), or that fraction of all images for a continuous label."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), bool)
    if fraction <= 0:
        return mask
    groups = [np.flatnonzero(labels == c) for c in range(classes)] if classes else [np.arange(len(labels))]
    for idx in groups:
        k = min(max(round(fraction * len(idx)), 1), len(idx) - 1)
        if k > 0:
            mask[rng.choice(idx, k, replace=False)] = True
    return mask


def split_train(data: Prepared, fraction: float, seed: int) -> tuple[Split, Split]:
    """(the extractor's training images, the held-out images of cDR-RS)."""
    train = data["train"]
    classes = task_of(data.meta.task).groups(data.meta.num_classes)
    held = holdout_mask(train.labels, fraction, seed, classes)
    return (Split(train.images[~held], train.labels[~held]), Split(train.images[held], train.labels[held]))


def fraction(cfg: Config) -> float:
    """``subsample.holdout`` when cDR-RS runs; 0 (the extractor sees every image) otherwise."""
    return cfg.subsample.holdout if cfg.subsample_fakes else 0.0


def extractor_data(cfg: Config, data: Prepared) -> Prepared:
    """``data`` with the held-out images removed from its training split."""
    fit, _ = split_train(data, fraction(cfg), cfg.seed + SEED_OFFSET)
    return Prepared(data.meta, {**data.splits, "train": fit})


def dre_reals(cfg: Config, data: Prepared) -> Split:
    """The real images cDR-RS fits on: the held-out ones, or the whole training split when
    ``subsample.holdout`` is 0 (the published recipe)."""
    if fraction(cfg) <= 0:
        return data["train"]
    return split_train(data, fraction(cfg), cfg.seed + SEED_OFFSET)[1]
