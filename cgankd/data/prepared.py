"""The canonical prepared format every stage reads: ``data.npz`` + ``meta.json`` in one folder.

Images are uint8 N x C x H x W; classification labels int64 class indices; regression labels
float32 in the label's own unit, with ``label_range`` in the metadata used to scale to [0, 1].
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cgankd.base.errors import CgankdError
from cgankd.base.io import atomic_dir, read_json
from cgankd.task import task_of

SPLITS = ("train", "val", "test")


@dataclass
class Split:
    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Meta:
    task: str
    source: str
    channels: int
    resolution: int
    classes: list[str] = field(default_factory=list)
    label_range: list[float] = field(default_factory=lambda: [0.0, 1.0])
    label_unit: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def scale(self, y: np.ndarray) -> np.ndarray:
        lo, hi = self.label_range
        return ((np.asarray(y, np.float64) - lo) / (hi - lo)).astype(np.float32)

    def unscale(self, y: np.ndarray) -> np.ndarray:
        lo, hi = self.label_range
        return (np.asarray(y, np.float64) * (hi - lo) + lo).astype(np.float32)


@dataclass
class Prepared:
    meta: Meta
    splits: dict[str, Split]

    def __getitem__(self, name: str) -> Split:
        return self.splits[name]


def check_images(images: np.ndarray, labels: np.ndarray, subject: str, task: str) -> None:
    if images.dtype != np.uint8 or images.ndim != 4:
        raise CgankdError(subject, f"images must be uint8 N x C x H x W, got {images.dtype} {images.shape}")
    if len(images) != len(labels):
        raise CgankdError(subject, f"{len(images)} images but {len(labels)} labels")
    if not task_of(task).categorical and not np.all(np.isfinite(labels)):
        bad = int((~np.isfinite(labels)).sum())
        raise CgankdError(subject, f"{bad} labels are NaN or infinite")


def save_prepared(data: Prepared, out: str | Path) -> None:
    arrays: dict[str, np.ndarray] = {}
    for name in SPLITS:
        s = data.splits[name]
        check_images(s.images, s.labels, f"{name} split", data.meta.task)
        arrays[f"{name}_x"] = s.images
        arrays[f"{name}_y"] = s.labels
    data.meta.counts = {name: len(data.splits[name]) for name in SPLITS}
    with atomic_dir(out) as tmp:
        np.savez(tmp / "data.npz", **arrays)
        (tmp / "meta.json").write_text(json.dumps(asdict(data.meta), indent=2, sort_keys=True) + "\n")


def load_prepared(path: str | Path) -> Prepared:
    path = Path(path)
    if not (path / "data.npz").is_file() or not (path / "meta.json").is_file():
        raise CgankdError(str(path), "not a prepared data folder (run `cgankd prepare` first)")
    meta = Meta(**read_json(path / "meta.json"))
    with np.load(path / "data.npz") as z:
        splits = {n: Split(z[f"{n}_x"], z[f"{n}_y"]) for n in SPLITS}
    return Prepared(meta, splits)
