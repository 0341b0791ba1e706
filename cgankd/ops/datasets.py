"""The data a stage's MLflow run read, named by its DVC version: ``dvc_md5`` computes the md5 DVC
records in ``dvc.lock`` for a file or folder (no DVC import, the same bytes hashed the same way), and
``dataset_input`` is the MLflow dataset input that carries it as its digest. A run's page thus names
the exact version of the prepared data and the fakes it used; ``dvc.lock`` finds the same version in
the DVC cache or the team's remote.

DVC 3's ``md5`` of a file is the md5 of its bytes; of a folder, the md5 of the JSON list of its files'
``{"md5", "relpath"}`` (sorted by relpath, keys sorted) followed by ``.dir``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

CHUNK = 1 << 20
IGNORED = ("__pycache__",)  # with *.pyc: what the repository's .dvcignore leaves out of a folder


def file_md5(path: Path) -> str:
    """A file's md5, read once per version in a process (as DVC's state: keyed by inode, size and
    mtime): the Prefect flow's cache keys and each stage's dataset inputs hash the same files."""
    st = path.stat()
    return _md5_of(str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _md5_of(path: str, _ino: int, _size: int, _mtime_ns: int) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _files(folder: Path) -> list[Path]:
    out = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in IGNORED]
        out += [Path(root) / n for n in names if not n.endswith(".pyc")]
    return out


def dvc_md5(path: Path) -> str:
    """The md5 ``dvc.lock`` records for ``path``: a file's, or a folder's ``<md5>.dir``."""
    if path.is_file():
        return file_md5(path)
    entries = sorted(({"md5": file_md5(p), "relpath": p.relative_to(path).as_posix()} for p in _files(path)),
                     key=lambda e: e["relpath"])
    return hashlib.md5(json.dumps(entries, sort_keys=True).encode(), usedforsecurity=False).hexdigest() + ".dir"


def size(path: Path) -> tuple[int, int]:
    """(files, bytes) of a file or folder."""
    files = [path] if path.is_file() else _files(path)
    return len(files), sum(p.stat().st_size for p in files)


def describe(name: str, path: Path, context: str) -> dict[str, Any]:
    """What the tracker records (live or into its backlog) for one input: computed once, when it is read."""
    n, nbytes = size(path)
    return {"name": name, "digest": dvc_md5(path), "source": str(path.resolve()), "context": context,
            "profile": {"files": n, "bytes": nbytes}}


def dataset_input(op: dict[str, Any]) -> Any:
    """MLflow's dataset input for a ``describe`` record: the DVC md5 as the digest, the path as a local source."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    ds = Dataset(name=op["name"], digest=op["digest"], source_type="local",
                 source=json.dumps({"uri": op["source"]}), profile=json.dumps(op["profile"]))
    return DatasetInput(dataset=ds, tags=[InputTag("mlflow.data.context", op["context"])])
