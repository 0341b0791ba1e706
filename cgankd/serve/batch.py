"""``cgankd predict``: a folder of PNG/JPEG images or an array file (.npy, or .npz with one array)
through the ONNX student, written as CSV (atomically), with a progress bar."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cgankd.base.errors import CgankdError
from cgankd.base.io import atomic_path
from cgankd.base.progress import Progress
from cgankd.serve.decode import BadInput, array, image
from cgankd.serve.runtime import ServedModel

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _array_file(path: Path) -> np.ndarray:
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if len(z.files) != 1:
                    raise CgankdError(str(path), f"expected one array in the .npz, found {z.files}")
                return z[z.files[0]]
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise CgankdError(str(path), f"unreadable array file ({exc})") from exc


def batches(src: Path, model: ServedModel, batch_size: int) -> tuple[int, Iterator[tuple[list[str], np.ndarray]]]:
    """(number of inputs, iterator of (ids, float32 batch)); a bad file stops with its name."""
    card = model.card
    if src.is_dir():
        files = sorted(p for p in src.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise CgankdError(str(src), f"no images ({', '.join(IMAGE_SUFFIXES)}) in the folder")

        def gen() -> Iterator[tuple[list[str], np.ndarray]]:
            for i in range(0, len(files), batch_size):
                chunk = files[i:i + batch_size]
                imgs = []
                for f in chunk:
                    try:
                        imgs.append(image(f.read_bytes(), card, str(f.relative_to(src))))
                    except BadInput as exc:
                        raise CgankdError(str(f), exc.message.split(": ", 1)[-1]) from exc
                x = card.preprocess(np.stack(imgs))
                yield [str(f.relative_to(src)) for f in chunk], x

        return len(files), gen()
    if not src.is_file():
        raise CgankdError(str(src), "no such file or folder")
    if src.suffix not in (".npy", ".npz"):
        raise CgankdError(str(src), "expected a folder of images or a .npy / .npz array file")
    arr = _array_file(src)
    try:
        x_all = array(arr, card, src.name, max_batch=len(arr) if arr.ndim == 4 else 1)
    except BadInput as exc:
        raise CgankdError(str(src), exc.message.split(": ", 1)[-1]) from exc

    def gen_arr() -> Iterator[tuple[list[str], np.ndarray]]:
        for i in range(0, len(x_all), batch_size):
            yield [str(j) for j in range(i, min(i + batch_size, len(x_all)))], x_all[i:i + batch_size]

    return len(x_all), gen_arr()


def header(model: ServedModel) -> list[str]:
    post = model.card.post
    if post["kind"] == "softmax":
        return ["input", "class", "index", *[f"p_{c}" for c in post["classes"]]]
    unit = post.get("unit") or "value"
    return ["input", f"value_{unit}" if unit != "value" else "value"]


def row(ident: str, pred: dict[str, Any]) -> list[Any]:
    if "class" in pred:
        return [ident, pred["class"], pred["index"], *[f"{p:.6f}" for p in pred["probabilities"].values()]]
    return [ident, f"{pred['value']:.6g}"]


def predict_to_csv(src: Path, out: Path, model: ServedModel, batch_size: int = 256) -> int:
    if batch_size < 1:
        raise CgankdError("--batch-size", f"must be >= 1, got {batch_size}")
    n, it = batches(src, model, batch_size)
    with atomic_path(out) as tmp, open(tmp, "w", newline="") as fh, Progress(n, "predict") as bar:
        w = csv.writer(fh)
        w.writerow(header(model))
        for ids, x in it:
            for ident, pred in zip(ids, model.predict(x), strict=True):
                w.writerow(row(ident, pred))
            bar.update(len(ids))
    return n
