"""The one file format of every model file: ``{"format": FORMAT, "kind": ..., "meta": plain data,
"state": tensors}``, written atomically and read with ``torch.load(weights_only=True)``: no pickled
code is ever run. A file holding pickled objects is refused with one line; a file of an older
cgankd (no ``format``) gets a one-line "re-run the stage". What each kind rebuilds is in
``cgankd.store.kinds``.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cgankd.base.errors import CgankdError
from cgankd.base.io import atomic_path
from cgankd.base.registry import Registry

FORMAT = "cgankd/2"
Builder = Callable[[dict[str, Any], dict[str, torch.Tensor]], nn.Module]
KINDS: Registry[Builder] = Registry("model file kind")


def plain(obj: Any) -> Any:
    """Metadata as the weights-only unpickler accepts it: numpy scalars and arrays become Python
    numbers and lists, tuples lists."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def save(path: str | Path, kind: str, meta: dict[str, Any], state: dict[str, Any]) -> None:
    """Write a model file atomically (tensors on the CPU, so a CPU machine can read a GPU run's)."""
    KINDS.get(kind)
    state = _to_cpu(state)
    buf = io.BytesIO()  # serialised in memory: a full disk is then an OSError of the write below
    torch.save({"format": FORMAT, "kind": kind, "meta": plain(meta), "state": state}, buf)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getbuffer())


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    return obj


def read(path: str | Path, kind: str, stage: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(meta, state) of a model file of this kind; every failure is one line naming the file."""
    path = Path(path)
    rerun = f"re-run `cgankd {stage}`" if stage else "re-run the stage that makes it"
    if not path.is_file():
        raise CgankdError(str(path), f"not found ({rerun} first)")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive
        raise CgankdError(str(path), f"not a readable model file (not written by torch.save); {rerun}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CgankdError(str(path), "holds pickled Python objects, refused (files are loaded with "
                          f"weights_only=True); {rerun} to write it again") from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise CgankdError(str(path), f"not a readable model file ({str(exc).splitlines()[0][:120]}); "
                          f"{rerun}") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CgankdError(str(path), f"written by an older cgankd (or not by cgankd); {rerun}")
    if obj.get("kind") != kind:
        raise CgankdError(str(path), f"holds a {obj.get('kind')}, expected a {kind}")
    return obj["meta"], obj["state"]
