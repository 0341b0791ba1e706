"""Write a prepared data set as image files in the layouts the file sources read: ImageFolder
(``train/<class>/*.png`` + ``test/<class>/*.png``) for classification, ``train.csv`` +
``test.csv`` beside the PNGs for regression. The worked example of docs/own-data.md starts from
the embedded renderer's images written this way, as a user's own folder would look."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from cgankd.base.errors import CgankdError
from cgankd.data.prepared import Prepared
from cgankd.task import task_of


def save_png(path: Path, chw: np.ndarray) -> None:
    img = Image.fromarray(chw[0] if chw.shape[0] == 1 else chw.transpose(1, 2, 0))
    img.save(path, "PNG")


def write_folder(data: Prepared, out: Path) -> dict[str, int]:
    """Train + val become ``train`` (the file sources hold out their own validation images),
    test stays ``test``. Refuses a folder that already holds files. Written beside ``out`` and
    renamed at the end: a crash leaves no half-written folder."""
    if out.exists() and any(out.iterdir()):
        raise CgankdError(str(out), "is not empty: write the example into a new folder")
    final, out = out, out.with_name(out.name + ".partial")
    shutil.rmtree(out, ignore_errors=True)  # a crashed earlier attempt
    m = data.meta
    splits = {"train": (np.concatenate([data["train"].images, data["val"].images]),
                        np.concatenate([data["train"].labels, data["val"].labels])),
              "test": (data["test"].images, data["test"].labels)}
    counts = {}
    for split, (images, labels) in splits.items():
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        if task_of(m.task).categorical:
            for c in m.classes:
                (folder / c).mkdir(exist_ok=True)
            for i, (im, y) in enumerate(zip(images, labels, strict=True)):
                save_png(folder / m.classes[int(y)] / f"{i:05d}.png", im)
        else:
            rows = []
            for i, (im, y) in enumerate(zip(images, labels, strict=True)):  # labels are in their own unit
                save_png(folder / f"{i:05d}.png", im)
                rows.append((f"{split}/{i:05d}.png", f"{float(y):.4f}"))
            with (out / f"{split}.csv").open("w", newline="") as f:
                csv.writer(f).writerows([("filename", "label"), *rows])
        counts[split] = len(images)
    if final.exists():
        final.rmdir()  # empty (checked above)
    out.rename(final)
    return counts
