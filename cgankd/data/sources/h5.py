"""The cGAN-KD and CcGAN authors' h5 files, in the layouts they ship (their loaders name the keys):

- split: ``images_train``, ``labels_train``, ``images_test``, ``labels_test``: UTKFace and Steering
  Angle as cGAN-KD ships them (``*_prop_0.8.h5``), CIFAR-style sets;
- split-valid: ``images_train``, ``labels_train``, ``images_valid``, ``labels_valid``: ImageNet-100
  (``ImageNet_128x128_100Class.h5``);
- cell-split: ``IMGs_grey``, ``CellCounts``, ``IMGs_grey_test``, ``CellCounts_test``: Cell-200 with
  its test images;
- cell-pool: ``IMGs_grey``, ``CellCounts``: Cell-200;
- rc49-pool: ``images``, ``labels``, ``types`` (+ ``indx_train``): RC-49;
- pool: ``images``, ``labels`` (+ ``races``): UTKFace and Steering Angle as the CcGAN repository
  ships them.

The first layout whose keys are all there is read; a file with none fails in one line naming the
keys it has. Pools are split by protocol:
- **label grid** (rc49-pool, cell-pool): train on every ``data.rc.train_every``-th distinct label with up
  to ``data.n_per_class`` images each (validation from the rest of those labels), test on up to
  ``data.n_test`` of the remaining images - unseen labels and held-out images of seen ones. With
  ``data.rc.split=indx_train`` (rc49-pool) the authors' ``indx_train`` is the training pool instead.
- **held out** (pool): every label is seen; ``data.n_test`` images drawn at random (at most a fifth of
  the pool, as the authors' ``prop_0.8`` files hold) are the test split, the label budget is taken
  from the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cgankd.base.errors import CgankdError
from cgankd.data.sources.base import SOURCES, Pool, require_root, to_nchw
from cgankd.task import task_of

if TYPE_CHECKING:  # the config names the sources (validation): no import at run time
    from cgankd.config import Config

Reader = Callable[["Config", Path, dict[str, np.ndarray]], Pool]


def _split(train: tuple[str, str], test: tuple[str, str]) -> Reader:
    def read(cfg: Config, path: Path, a: dict[str, np.ndarray]) -> Pool:
        return split_pool(cfg, path, a[train[0]], a[train[1]], a[test[0]], a[test[1]], (*train, *test))

    return read


def _grid(images: str, labels: str) -> Reader:
    def read(cfg: Config, path: Path, a: dict[str, np.ndarray]) -> Pool:
        x, y = _pool_arrays(cfg, path, a, images, labels)
        if cfg.data.rc.split == "indx_train":
            if "indx_train" not in a:
                raise CgankdError(str(path), f"data.rc.split=indx_train, but the file has no indx_train "
                                             f"(has: {', '.join(a)})")
            return indexed_pool(cfg, path, x, y, a["indx_train"])
        return grid_pool(cfg, path, x, y)

    return read


def _held_out(cfg: Config, path: Path, a: dict[str, np.ndarray]) -> Pool:
    x, y = _pool_arrays(cfg, path, a, "images", "labels")
    rng = np.random.default_rng([cfg.data.seed, 13])
    test = np.sort(rng.permutation(len(y))[: min(cfg.data.n_test, len(y) // 5)])
    rest = np.setdiff1d(np.arange(len(y)), test)
    return _budget(cfg, path, x, y, rest, test, {"layout": "pool", "test": "held out at random"})


# (name, keys it needs, what it also reads when present, reader), tried in order
LAYOUTS: list[tuple[str, tuple[str, ...], tuple[str, ...], Reader]] = [
    ("split", ("images_train", "labels_train", "images_test", "labels_test"), (),
     _split(("images_train", "labels_train"), ("images_test", "labels_test"))),
    ("split-valid", ("images_train", "labels_train", "images_valid", "labels_valid"), (),
     _split(("images_train", "labels_train"), ("images_valid", "labels_valid"))),
    ("cell-split", ("IMGs_grey", "CellCounts", "IMGs_grey_test", "CellCounts_test"), (),
     _split(("IMGs_grey", "CellCounts"), ("IMGs_grey_test", "CellCounts_test"))),
    ("cell-pool", ("IMGs_grey", "CellCounts"), (), _grid("IMGs_grey", "CellCounts")),
    ("rc49-pool", ("images", "labels", "types"), ("indx_train",), _grid("images", "labels")),
    ("pool", ("images", "labels"), (), _held_out),
]


@SOURCES.register("h5")
def h5(cfg: Config) -> Pool:
    import h5py

    path = require_root(cfg, "an h5 file")
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise CgankdError(str(path), "not a readable h5 file") from None
    with f:
        layout = next((lay for lay in LAYOUTS if all(k in f for k in lay[1])), None)
        if layout is None:
            # the closest layout: the most of its keys present, the fewest missing
            name, keys, _, _ = max(LAYOUTS, key=lambda lay: (sum(k in f for k in lay[1]),
                                                             -sum(k not in f for k in lay[1])))
            missing = [k for k in keys if k not in f]
            raise CgankdError(str(path), f"missing keys {', '.join(missing)} of the {name} layout (has: "
                                         f"{', '.join(f.keys()) or 'no keys'}; layouts: docs/own-data.md)")
        name, keys, optional, read = layout
        arrays = {k: np.asarray(f[k]) for k in (*keys, *optional) if k in f}
    pool = read(cfg, path, arrays)
    pool.provenance.setdefault("layout", name)
    return pool


def _labels(y: np.ndarray, subject: str, path: Path) -> np.ndarray:
    y = y.reshape(-1)
    if not np.all(np.isfinite(y.astype(np.float64))):
        raise CgankdError(str(path), f"{subject} holds NaN or infinite values")
    return y


def split_pool(cfg: Config, path: Path, x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, y_te: np.ndarray,
               keys: tuple[str, str, str, str]) -> Pool:
    x_tr = to_nchw(x_tr, cfg.data.channels, f"{path}:{keys[0]}")
    x_te = to_nchw(x_te, cfg.data.channels, f"{path}:{keys[2]}")
    y_tr, y_te = _labels(y_tr, keys[1], path), _labels(y_te, keys[3], path)
    for x, y, kx, ky in ((x_tr, y_tr, keys[0], keys[1]), (x_te, y_te, keys[2], keys[3])):
        if len(x) != len(y):
            raise CgankdError(str(path), f"{kx} has {len(x)} images but {ky} has {len(y)}")
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise CgankdError(str(path), f"train images {x_tr.shape[1:]} and test images {x_te.shape[1:]} differ in size")
    if task_of(cfg.task).categorical:
        if not np.all(y_tr == np.round(y_tr)):
            raise CgankdError(str(path), "classification labels must be integers (task=regression?)")
        y_tr, y_te = y_tr.astype(np.int64), y_te.astype(np.int64)
        classes = [str(i) for i in range(int(max(y_tr.max(), y_te.max())) + 1)]
        return Pool("classification", x_tr, y_tr, x_te, y_te, classes=classes, provenance={"file": str(path)})
    return Pool("regression", x_tr, y_tr.astype(np.float32), x_te, y_te.astype(np.float32),
                provenance={"file": str(path)})


def _pool_arrays(cfg: Config, path: Path, a: dict[str, np.ndarray], images: str, labels: str
                 ) -> tuple[np.ndarray, np.ndarray]:
    if task_of(cfg.task).categorical:
        raise CgankdError(str(path), f"holds a pool of {images}/{labels}, a regression layout; set task=regression")
    x = to_nchw(a[images], cfg.data.channels, f"{path}:{images}")
    y = _labels(a[labels], labels, path).astype(np.float64)
    if len(x) != len(y):
        raise CgankdError(str(path), f"{images} has {len(x)} images but {labels} has {len(y)}")
    return x, y.astype(np.float32)


def _budget(cfg: Config, path: Path, x: np.ndarray, y: np.ndarray, pool: np.ndarray, test: np.ndarray,
            provenance: dict) -> Pool:
    """The label budget (train, val) from the images ``pool`` indexes; ``test`` indexes the test split."""
    from cgankd.data.budget import split_budget

    tr, va = split_budget(y[pool], "regression", cfg.data.n_per_class, cfg.data.n_val_per_class,
                          cfg.data.seed, str(path))
    return Pool("regression", x[pool[tr]], y[pool[tr]], x[test], y[test], val_x=x[pool[va]], val_y=y[pool[va]],
                provenance={"file": str(path), **provenance})


def _test_from(cfg: Config, used: np.ndarray) -> np.ndarray:
    rest = np.flatnonzero(~used)
    rng = np.random.default_rng([cfg.data.seed, 11])
    return np.sort(rng.permutation(rest)[: cfg.data.n_test])


def grid_pool(cfg: Config, path: Path, x: np.ndarray, y: np.ndarray) -> Pool:
    """RC-49's protocol: train on every ``train_every``-th distinct label, test on the rest."""
    from cgankd.data.budget import split_budget

    train_labels = np.unique(y)[:: cfg.data.rc.train_every]
    idx_seen = np.flatnonzero(np.isin(y, train_labels))
    tr, va = split_budget(y[idx_seen], "regression", cfg.data.n_per_class, cfg.data.n_val_per_class,
                          cfg.data.seed, str(path))
    used = np.zeros(len(y), bool)
    used[idx_seen[tr]] = used[idx_seen[va]] = True
    te = _test_from(cfg, used)
    return Pool("regression", x[idx_seen[tr]], y[idx_seen[tr]], x[te], y[te], val_x=x[idx_seen[va]],
                val_y=y[idx_seen[va]], provenance={"file": str(path), "train_labels": len(train_labels),
                                                   "test_from": int((~used).sum())})


def indexed_pool(cfg: Config, path: Path, x: np.ndarray, y: np.ndarray, indx_train: np.ndarray) -> Pool:
    """The authors' ``indx_train`` as the training pool (the label budget taken from it), the test split
    from the images it leaves out."""
    idx = np.asarray(indx_train).reshape(-1).astype(np.int64)
    if len(idx) == 0 or idx.min() < 0 or idx.max() >= len(y) or len(np.unique(idx)) != len(idx):
        raise CgankdError(str(path), f"indx_train must hold distinct indices into the {len(y)} images")
    in_train = np.zeros(len(y), bool)
    in_train[idx] = True
    return _budget(cfg, path, x, y, np.sort(idx), _test_from(cfg, in_train),
                   {"split": "indx_train", "test_from": int((~in_train).sum())})
