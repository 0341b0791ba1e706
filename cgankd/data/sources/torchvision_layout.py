"""MNIST / FashionMNIST (idx files) and CIFAR-10/100 (python pickles) in torchvision's layout.

Read from disk with numpy only: nothing is ever downloaded.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cgankd.base.errors import CgankdError
from cgankd.data.sources.base import SOURCES, Pool, require_root, require_task

if TYPE_CHECKING:  # the config names the sources (validation): no import at run time
    from cgankd.config import Config


def _find(root: Path, names: list[str], what: str) -> Path:
    for name in names:
        for p in (root / name, root / (name + ".gz")):
            if p.is_file():
                return p
    raise CgankdError(str(root), f"missing {what} ({names[0]}[.gz])")


def read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 8:
        raise CgankdError(str(path), "not an idx file of unsigned bytes")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise CgankdError(str(path), f"truncated: header says {dims}, found {data.size} bytes")
    return data.reshape(dims)


def _mnist_like(cfg: Config, folder: str, classes: list[str]) -> Pool:
    require_task(cfg, "classification")
    root = require_root(cfg, f"a folder holding {folder}/raw")
    raw = root / folder / "raw" if (root / folder / "raw").is_dir() else root
    tr_x = read_idx(_find(raw, ["train-images-idx3-ubyte"], "training images"))
    tr_y = read_idx(_find(raw, ["train-labels-idx1-ubyte"], "training labels"))
    te_x = read_idx(_find(raw, ["t10k-images-idx3-ubyte"], "test images"))
    te_y = read_idx(_find(raw, ["t10k-labels-idx1-ubyte"], "test labels"))
    for x, y, what in ((tr_x, tr_y, "train"), (te_x, te_y, "t10k")):
        if len(x) != len(y):
            raise CgankdError(str(raw), f"{what}: {len(x)} images but {len(y)} labels")
    return Pool("classification", tr_x[:, None].copy(), tr_y.astype(np.int64),
                te_x[:, None].copy(), te_y.astype(np.int64), classes=classes,
                provenance={"root": str(root)})


@SOURCES.register("mnist")
def mnist(cfg: Config) -> Pool:
    return _mnist_like(cfg, "MNIST", [str(i) for i in range(10)])


@SOURCES.register("fashionmnist")
def fashionmnist(cfg: Config) -> Pool:
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
             "Sneaker", "Bag", "Ankle boot"]
    return _mnist_like(cfg, "FashionMNIST", names)


# what a CIFAR batch holds: dicts, lists, bytes, numbers and numpy arrays; any other global (a
# function a crafted file would call) is refused before it is looked up, so nothing runs
NUMPY_GLOBALS = {(m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric",
                                  "numpy._core.numeric", "numpy")
                 for n in ("_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer")}


class _DataOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in NUMPY_GLOBALS:
            raise pickle.UnpicklingError(f"{module}.{name} is not data")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    if not path.is_file():
        raise CgankdError(str(path), "missing CIFAR batch file")
    try:
        with open(path, "rb") as f:
            return _DataOnly(f, encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise CgankdError(str(path), f"refused: a CIFAR batch holds only data, this pickle asks for {exc}") from None
    except Exception as exc:  # corrupt pickle: name the file
        raise CgankdError(str(path), f"unreadable CIFAR batch ({type(exc).__name__})") from None


def _cifar(cfg: Config, folder: str, train: list[str], test: str, label_key: str,
           meta_file: str, names_key: str) -> Pool:
    require_task(cfg, "classification")
    root = require_root(cfg, f"a folder holding {folder}")
    base = root / folder if (root / folder).is_dir() else root
    batches = [_unpickle(base / b) for b in train]
    te = _unpickle(base / test)
    tr_x = np.concatenate([np.asarray(b["data"], np.uint8) for b in batches]).reshape(-1, 3, 32, 32)
    tr_y = np.concatenate([np.asarray(b[label_key], np.int64) for b in batches])
    te_x = np.asarray(te["data"], np.uint8).reshape(-1, 3, 32, 32)
    te_y = np.asarray(te[label_key], np.int64)
    meta = base / meta_file
    classes = list(_unpickle(meta)[names_key]) if meta.is_file() else [
        str(i) for i in range(int(tr_y.max()) + 1)]
    return Pool("classification", tr_x, tr_y, te_x, te_y, classes=classes,
                provenance={"root": str(root)})


@SOURCES.register("cifar10")
def cifar10(cfg: Config) -> Pool:
    return _cifar(cfg, "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)],
                  "test_batch", "labels", "batches.meta", "label_names")


@SOURCES.register("cifar100")
def cifar100(cfg: Config) -> Pool:
    return _cifar(cfg, "cifar-100-python", ["train"], "test", "fine_labels", "meta",
                  "fine_label_names")
