"""The cGAN-KD authors' h5 files.

Two layouts: ``images_train``, ``labels_train``, ``images_test``, ``labels_test`` (UTKFace,
Steering Angle, ...), and RC-49's single pool ``images``, ``labels`` (+ ``types``). For the pool,
the RC-49 protocol applies: train on every ``data.rc.train_every``-th distinct label with up to
``data.n_per_class`` images each (validation from the rest of those labels), test on up to
``data.n_test`` of the remaining images - unseen labels and held-out images of seen ones.
"""

from __future__ import annotations

import numpy as np

from cgankd.base.errors import CgankdError
from cgankd.config import Config
from cgankd.data.sources.base import SOURCES, Pool, require_root, to_nchw
from cgankd.task import task_of

KEYS = ("images_train", "labels_train", "images_test", "labels_test")
POOL_KEYS = ("images", "labels")


@SOURCES.register("h5")
def h5(cfg: Config) -> Pool:
    import h5py

    path = require_root(cfg, "an h5 file")
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise CgankdError(str(path), "not a readable h5 file") from None
    with f:
        if all(k in f for k in POOL_KEYS) and not any(k in f for k in KEYS):
            pool = {k: np.asarray(f[k]) for k in POOL_KEYS}
            return rc49_pool(cfg, path, pool["images"], pool["labels"])
        missing = [k for k in KEYS if k not in f]
        if missing:
            raise CgankdError(str(path), f"missing keys {', '.join(missing)} (has: {', '.join(f.keys())})")
        arrays = {k: np.asarray(f[k]) for k in KEYS}
    x_tr = to_nchw(arrays["images_train"], cfg.data.channels, f"{path}:images_train")
    x_te = to_nchw(arrays["images_test"], cfg.data.channels, f"{path}:images_test")
    y_tr, y_te = arrays["labels_train"].reshape(-1), arrays["labels_test"].reshape(-1)
    for x, y, split in ((x_tr, y_tr, "train"), (x_te, y_te, "test")):
        if len(x) != len(y):
            raise CgankdError(str(path), f"images_{split} has {len(x)} images but labels_{split} has {len(y)}")
        if not np.all(np.isfinite(y.astype(np.float64))):
            raise CgankdError(str(path), f"labels_{split} holds NaN or infinite values")
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise CgankdError(str(path), f"train images {x_tr.shape[1:]} and test images {x_te.shape[1:]} differ in size")
    if task_of(cfg.task).categorical:
        if not np.all(y_tr == np.round(y_tr)):
            raise CgankdError(str(path), "classification labels must be integers (task=regression?)")
        y_tr, y_te = y_tr.astype(np.int64), y_te.astype(np.int64)
        classes = [str(i) for i in range(int(max(y_tr.max(), y_te.max())) + 1)]
        return Pool("classification", x_tr, y_tr, x_te, y_te, classes=classes,
                    provenance={"file": str(path)})
    return Pool("regression", x_tr, y_tr.astype(np.float32), x_te, y_te.astype(np.float32),
                provenance={"file": str(path)})


def rc49_pool(cfg: Config, path, images: np.ndarray, labels: np.ndarray) -> Pool:
    from cgankd.data.budget import split_budget

    if task_of(cfg.task).categorical:
        raise CgankdError(str(path), "holds the RC-49 pool layout (images/labels), a regression set; "
                                     "set task=regression")
    x = to_nchw(images, cfg.data.channels, f"{path}:images")
    y = labels.reshape(-1).astype(np.float64)
    if len(x) != len(y):
        raise CgankdError(str(path), f"images has {len(x)} images but labels has {len(y)}")
    if not np.all(np.isfinite(y)):
        raise CgankdError(str(path), "labels holds NaN or infinite values")
    y = y.astype(np.float32)
    train_labels = np.unique(y)[:: cfg.data.rc.train_every]
    seen = np.isin(y, train_labels)
    idx_seen = np.flatnonzero(seen)
    tr, va = split_budget(y[idx_seen], "regression", cfg.data.n_per_class, cfg.data.n_val_per_class,
                          cfg.data.seed, str(path))
    used = np.zeros(len(y), bool)
    used[idx_seen[tr]] = used[idx_seen[va]] = True
    rest = np.flatnonzero(~used)
    rng = np.random.default_rng([cfg.data.seed, 11])
    te = np.sort(rng.permutation(rest)[: cfg.data.n_test])
    return Pool("regression", x[idx_seen[tr]], y[idx_seen[tr]], x[te], y[te], val_x=x[idx_seen[va]],
                val_y=y[idx_seen[va]], provenance={"file": str(path), "layout": "rc49-pool",
                                                   "train_labels": len(train_labels),
                                                   "test_from": int(len(rest))})
