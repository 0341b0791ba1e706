"""Label budgets: pick the labelled training images and a validation split from a pool."""

from __future__ import annotations

import sys

import numpy as np

from cgankd.base.errors import CgankdError
from cgankd.task import task_of


def split_budget(labels: np.ndarray, task: str, n_per_class: int | None, n_val_per_class: int,
                 seed: int, subject: str) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) into ``labels``.

    Classification: ``n_per_class`` per class for training (all when None) and
    ``n_val_per_class`` more per class for validation. Regression: up to ``n_per_class`` images
    per distinct label for training; validation takes ``n_val_per_class`` per ten distinct
    training labels from what is left (at least one image).
    """
    rng = np.random.default_rng([seed, 7])
    train: list[np.ndarray] = []
    val: list[np.ndarray] = []
    if task_of(task).categorical:
        n_per_class = fit_budget(labels, n_per_class, n_val_per_class, subject)
        for c in np.unique(labels):
            idx = rng.permutation(np.flatnonzero(labels == c))
            n_tr = len(idx) - n_val_per_class if n_per_class is None else n_per_class
            if n_tr < 1 or len(idx) < n_tr + n_val_per_class:
                need = (n_per_class or 1) + n_val_per_class
                raise CgankdError(subject, f"class {c} has {len(idx)} images; the budget needs "
                                           f"{need} (data.n_per_class + data.n_val_per_class)")
            train.append(idx[:n_tr])
            val.append(idx[n_tr:n_tr + n_val_per_class])
        return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))
    rest: list[np.ndarray] = []
    uniq = np.unique(labels)
    for y in uniq:
        idx = rng.permutation(np.flatnonzero(labels == y))
        k = len(idx) if n_per_class is None else min(n_per_class, len(idx))
        train.append(idx[:k])
        rest.append(idx[k:])
    pool = rng.permutation(np.concatenate(rest)) if rest else np.array([], np.int64)
    n_val = max(1, n_val_per_class * len(uniq) // 10)
    if len(pool) == 0:  # nothing left over: hold out from the training images instead
        tr = rng.permutation(np.concatenate(train))
        n_val = min(n_val, max(1, len(tr) // 10))
        return np.sort(tr[n_val:]), np.sort(tr[:n_val])
    return np.sort(np.concatenate(train)), np.sort(pool[:n_val])


def fit_budget(labels: np.ndarray, n_per_class: int | None, n_val_per_class: int, subject: str) -> int | None:
    """``n_per_class``, or the most every class can give beside its validation images (with a
    one-line notice) when the smallest class is too small for it; classes stay balanced."""
    if n_per_class is None or len(labels) == 0:
        return n_per_class
    smallest = int(np.bincount(np.unique(labels, return_inverse=True)[1]).min())
    if smallest >= n_per_class + n_val_per_class or smallest - n_val_per_class < 1:
        return n_per_class  # fits, or cannot fit even one image per class (the caller says so)
    used = smallest - n_val_per_class
    print(f"prepare: notice: {subject}: the smallest class has {smallest} images, so data.n_per_class="
          f"{used} is used instead of {n_per_class} (plus data.n_val_per_class={n_val_per_class}) for "
          "every class", file=sys.stderr)
    return used


def target_resolution(native: int, wanted: int | None) -> int:
    """``data.resolution`` when set, else the native size rounded up to a power of two
    (the GANs up-sample from 4x4 by factors of two: MNIST's 28 becomes 32)."""
    if wanted is not None:
        return wanted
    return 1 << max(2, (native - 1).bit_length())
