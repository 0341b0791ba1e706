"""Request bodies -> the model input (float32 N x C x H x W in [0, 1]), with the preprocessing the
model card carries. Every refusal is a ``BadInput`` with an HTTP status and a one-line reason.

Images (PNG, JPEG) must already have the model's size and colour mode: nothing is resized or
converted, because neither is the training preprocessing and either would change predictions
silently. Arrays: ``C x H x W`` or ``N x C x H x W``; uint8 = pixels (divided as in training),
floats = the model input itself and must lie in [0, 1]. JSON numbers are floats.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from typing import Any

import numpy as np

from cgankd.serve.card import ModelCard

PNG, JPEG, NPY = b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"\x93NUMPY"
MODES = {"L": 1, "RGB": 3}


class BadInput(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def sniff(data: bytes) -> str:
    for kind, magic in (("png", PNG), ("jpeg", JPEG), ("npy", NPY)):
        if data.startswith(magic):
            return kind
    return "unknown"


def image(data: bytes, card: ModelCard, name: str = "image") -> np.ndarray:
    """PNG/JPEG bytes -> uint8 C x H x W, exactly as stored in the prepared data."""
    from PIL import Image, UnidentifiedImageError

    if sniff(data) not in ("png", "jpeg"):
        raise BadInput(415, f"{name}: not a PNG or JPEG image")
    try:
        with Image.open(io.BytesIO(data)) as img:  # reads the header only
            if img.size != (card.width, card.height):  # checked before decoding: no pixel bomb is unpacked
                raise BadInput(422, f"{name}: is {img.size[0]}x{img.size[1]}; the model takes "
                               f"{card.width}x{card.height}; images are not resized")
            img.load()
            mode, size = img.mode, img.size
            arr = np.asarray(img)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        raise BadInput(422, f"{name}: unreadable image ({exc})") from exc
    if mode != card.color:
        have = MODES.get(mode, f"mode {mode}")
        raise BadInput(422, f"{name}: has {have} channel(s) ({mode}); the model takes {card.channels} "
                       f"({card.color}); images are not converted")
    if size != (card.width, card.height):
        raise BadInput(422, f"{name}: is {size[0]}x{size[1]}; the model takes {card.width}x{card.height}; "
                       "images are not resized")
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def array(arr: np.ndarray, card: ModelCard, name: str = "array", max_batch: int = 1024) -> np.ndarray:
    """An array in the input contract -> float32 N x C x H x W in [0, 1]."""
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or tuple(arr.shape[1:]) != card.shape:
        want = "x".join(map(str, card.shape))
        raise BadInput(422, f"{name}: shape {list(arr.shape)}; expected N x {want} or {want}")
    if len(arr) == 0:
        raise BadInput(422, f"{name}: empty batch")
    if len(arr) > max_batch:
        raise BadInput(413, f"{name}: batch of {len(arr)} exceeds the limit of {max_batch}")
    if arr.dtype == np.uint8:
        return card.preprocess(arr)
    if not np.issubdtype(arr.dtype, np.floating):
        raise BadInput(422, f"{name}: dtype {arr.dtype}; send uint8 pixels or floats in [0, 1]")
    x = arr.astype(np.float32)
    if not np.isfinite(x).all():
        raise BadInput(422, f"{name}: {int((~np.isfinite(x)).sum())} NaN or infinite value(s)")
    if x.min() < 0.0 or x.max() > 1.0:
        raise BadInput(422, f"{name}: values in [{x.min():.4g}, {x.max():.4g}]; floats must lie in [0, 1] "
                       "(send uint8 for 0-255 pixels)")
    return x


def npy(data: bytes, card: ModelCard, name: str = "array", max_batch: int = 1024) -> np.ndarray:
    """A .npy file; its header's shape is checked against the bytes that follow before anything is
    allocated (a header may declare any size)."""
    try:
        f = io.BytesIO(data)
        fmt = np.lib.format
        header = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(fmt.read_magic(f))
        if header is None:
            raise ValueError("a .npy format version other than 1.0 or 2.0")
        shape, _, dtype = header(f)
        need = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if need > len(data) - f.tell():
            raise BadInput(422, f"{name}: the .npy header declares shape {list(shape)} ({need:,} bytes) but "
                           f"{len(data) - f.tell():,} bytes follow it")
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError, TypeError) as exc:
        raise BadInput(422, f"{name}: unreadable .npy ({str(exc).splitlines()[0][:200]})") from exc
    return array(arr, card, name, max_batch)


def images_b64(items: Any, card: ModelCard, max_batch: int) -> np.ndarray:
    """``{"images": [base64 PNG/JPEG, ...]}`` -> the model input, image by image."""
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise BadInput(422, "body: 'images' must be a non-empty array of base64 strings")
    if len(items) > max_batch:
        raise BadInput(413, f"body: {len(items)} images exceed the limit of {max_batch}")
    out = []
    for n, item in enumerate(items):
        try:
            data = base64.b64decode(item, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadInput(422, f"images[{n}]: not base64 ({exc})") from exc
        out.append(image(data, card, f"images[{n}]"))
    return card.preprocess(np.stack(out))


def from_json(body: bytes, card: ModelCard, max_batch: int = 1024) -> np.ndarray:
    """``[...]``, ``{"inputs": [...]}`` or ``{"instances": [...]}`` of numbers in [0, 1], or
    ``{"images": [...]}`` of base64 PNG/JPEG files (cgankd/serve/schema.py)."""
    try:
        obj: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, and an integer of over 4,300 digits
        raise BadInput(400, f"body: invalid JSON ({str(exc).splitlines()[0][:200]})") from exc
    except RecursionError:
        raise BadInput(400, "body: JSON nested too deeply") from None
    if isinstance(obj, dict):
        keys = [k for k in ("inputs", "instances", "images") if obj.get(k) is not None]
        if len(keys) != 1:
            why = "needs" if not keys else f"has {' and '.join(keys)}; send"
            raise BadInput(422, f"body: a JSON object {why} one of 'inputs' (or 'instances') and 'images'")
        if keys[0] == "images":
            return images_b64(obj["images"], card, max_batch)
        obj = obj[keys[0]]
    if not isinstance(obj, list):
        raise BadInput(422, "body: expected a JSON array of numbers")
    try:
        arr = np.asarray(obj, dtype=np.float64)
    except RecursionError:
        raise BadInput(400, "body: JSON nested too deeply") from None
    except (ValueError, TypeError, OverflowError) as exc:  # OverflowError: an integer beyond float64
        raise BadInput(422, f"body: not a rectangular array of numbers ({str(exc).splitlines()[0][:200]})") from exc
    if arr.size == 0:
        raise BadInput(422, "body: empty batch")
    return array(arr, card, "body", max_batch)


def one_part(data: bytes, card: ModelCard, name: str, max_batch: int) -> np.ndarray:
    """An uploaded file or raw body by its content: PNG/JPEG -> 1 image, .npy -> a batch."""
    if not data:
        raise BadInput(422, f"{name}: empty")
    kind = sniff(data)
    if kind == "npy":
        return npy(data, card, name, max_batch)
    if kind == "unknown":
        raise BadInput(415, f"{name}: not a PNG, JPEG or .npy file (JSON needs Content-Type: application/json)")
    return card.preprocess(image(data, card, name)[None])
