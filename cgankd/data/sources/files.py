"""Image files on disk: ImageFolder (a sub-folder per class) and folder + CSV (regression)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, UnidentifiedImageError

from cgankd.base.errors import CgankdError
from cgankd.data.sources.base import SOURCES, Pool, require_root, require_task

if TYPE_CHECKING:  # the config names the sources (validation): no import at run time
    from cgankd.config import Config

IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def load_image(path: Path, resolution: int, channels: int) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im = im.convert("L" if channels == 1 else "RGB")
            if im.size != (resolution, resolution):
                im = im.resize((resolution, resolution), Image.BILINEAR)
            arr = np.asarray(im, np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise CgankdError(str(path), f"not a readable image ({type(exc).__name__})") from None
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)


def _shape(cfg: Config) -> tuple[int, int]:
    return cfg.data.resolution or 32, cfg.data.channels or 3


def _holdout(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng([seed, 11]).permutation(n)
    k = max(1, int(round(n * fraction)))
    return np.sort(perm[k:]), np.sort(perm[:k])


def _read_class_folders(root: Path, res: int, ch: int, classes: list[str] | None):
    found = sorted(p.name for p in root.iterdir() if p.is_dir())
    classes = classes or found
    if not classes:
        raise CgankdError(str(root), "no class sub-folders (ImageFolder layout: root/<class>/*.png)")
    xs, ys = [], []
    for c, name in enumerate(classes):
        files = sorted(p for p in (root / name).glob("*") if p.suffix.lower() in IMAGE_EXT)
        if not files:
            raise CgankdError(str(root / name), "class folder has no images")
        xs += [load_image(p, res, ch) for p in files]
        ys += [c] * len(files)
    return np.stack(xs), np.asarray(ys, np.int64), classes


@SOURCES.register("imagefolder")
def imagefolder(cfg: Config) -> Pool:
    """``root/train/<class>/*`` + ``root/test/<class>/*``, or ``root/<class>/*`` (20% held out)."""
    require_task(cfg, "classification")
    root = require_root(cfg, "an ImageFolder directory")
    res, ch = _shape(cfg)
    if (root / "train").is_dir() and (root / "test").is_dir():
        tr_x, tr_y, classes = _read_class_folders(root / "train", res, ch, None)
        te_x, te_y, _ = _read_class_folders(root / "test", res, ch, classes)
    else:
        x, y, classes = _read_class_folders(root, res, ch, None)
        tr, te = _holdout(len(y), 0.2, 0)
        tr_x, tr_y, te_x, te_y = x[tr], y[tr], x[te], y[te]
    return Pool("classification", tr_x, tr_y, te_x, te_y, classes=classes,
                provenance={"root": str(root)})


def _read_csv(path: Path, folder: Path, res: int, ch: int) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"filename", "label"} <= set(reader.fieldnames):
            raise CgankdError(str(path), "needs a header with columns filename,label")
        for i, row in enumerate(reader, start=2):
            try:
                y = float(row["label"])
            except (TypeError, ValueError):
                raise CgankdError(str(path), f"line {i}: label {row['label']!r} is not a number") from None
            if not np.isfinite(y):
                raise CgankdError(str(path), f"line {i}: label is NaN or infinite")
            img = (folder / row["filename"]).resolve()
            if not img.is_relative_to(folder.resolve()):  # an absolute or ../ row, or a link out of the root
                raise CgankdError(str(path), f"line {i}: image {row['filename']!r} is outside data.root")
            if not img.is_file():
                raise CgankdError(str(path), f"line {i}: image {row['filename']!r} not found")
            xs.append(load_image(img, res, ch))
            ys.append(y)
    if not xs:
        raise CgankdError(str(path), "no rows")
    return np.stack(xs), np.asarray(ys, np.float32)


@SOURCES.register("csv")
def csv_folder(cfg: Config) -> Pool:
    """A folder with images and ``train.csv`` + ``test.csv`` (or ``labels.csv``, 20% held out)."""
    require_task(cfg, "regression")
    root = require_root(cfg, "a folder with images and labels.csv (filename,label)")
    res, ch = _shape(cfg)
    if (root / "train.csv").is_file() and (root / "test.csv").is_file():
        tr_x, tr_y = _read_csv(root / "train.csv", root, res, ch)
        te_x, te_y = _read_csv(root / "test.csv", root, res, ch)
    elif (root / "labels.csv").is_file():
        x, y = _read_csv(root / "labels.csv", root, res, ch)
        tr, te = _holdout(len(y), 0.2, 0)
        tr_x, tr_y, te_x, te_y = x[tr], y[tr], x[te], y[te]
    else:
        raise CgankdError(str(root), "missing labels.csv (or train.csv + test.csv)")
    return Pool("regression", tr_x, tr_y, te_x, te_y, provenance={"root": str(root)})
