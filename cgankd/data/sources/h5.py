"""The cGAN-KD authors' h5 files: ``images_train``, ``labels_train``, ``images_test``, ``labels_test``."""

from __future__ import annotations

import numpy as np

from cgankd.config import Config
from cgankd.data.sources.base import SOURCES, Pool, require_root, to_nchw
from cgankd.errors import CgankdError

KEYS = ("images_train", "labels_train", "images_test", "labels_test")


@SOURCES.register("h5")
def h5(cfg: Config) -> Pool:
    import h5py

    path = require_root(cfg, "an h5 file")
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise CgankdError(str(path), "not a readable h5 file") from None
    with f:
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
    if cfg.task == "classification":
        if not np.all(y_tr == np.round(y_tr)):
            raise CgankdError(str(path), "classification labels must be integers (task=regression?)")
        y_tr, y_te = y_tr.astype(np.int64), y_te.astype(np.int64)
        classes = [str(i) for i in range(int(max(y_tr.max(), y_te.max())) + 1)]
        return Pool("classification", x_tr, y_tr, x_te, y_te, classes=classes,
                    provenance={"file": str(path)})
    return Pool("regression", x_tr, y_tr.astype(np.float32), x_te, y_te.astype(np.float32),
                provenance={"file": str(path)})
