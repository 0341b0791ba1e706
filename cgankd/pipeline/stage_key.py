"""A stage call's input key, computed as DVC computes a stage's state in ``dvc.lock``: the params it
reads, the md5 of each file and folder it reads (its data deps, ``cgankd.ops.datasets.dvc_md5``) and of
the code it imports (``dvc_yaml.code_deps``). The Prefect flow caches each stage task on it: a second
run with nothing changed runs no stage. ``outputs_present`` says whether the stage's outputs are still
in ``out_dir`` (a cached task whose outputs were deleted must run again)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from cgankd.config import Config
from cgankd.config.layout import Layout
from cgankd.ops.datasets import dvc_md5
from cgankd.pipeline.dvc_yaml import ARTIFACTS, ROOT, code_deps, stage_name, stage_specs
from cgankd.pipeline.spec import stage


def _md5(path: Path) -> str:
    return dvc_md5(path) if path.exists() else "missing"


def _spec(cfg: Config, name: str, method: str | None) -> dict:
    return stage_specs(cfg)[stage_name(name, method)]


def _local(cfg: Config, dep: str) -> Path:
    """A dvc.yaml path (under ``artifacts``, the out_dir every command pins) in ``cfg.out_dir``."""
    rel = Path(dep)
    if not rel.is_absolute() and rel.parts[:1] == (ARTIFACTS,):
        return cfg.path(*rel.parts[1:])
    return rel


def input_key(cfg: Config, name: str, method: str | None = None) -> str:
    """sha256 of the stage call's params, data deps and code deps (and where its outputs go)."""
    s, spec = stage(name), _spec(cfg, name, method)
    params = {k: v for k, v in cfg.flat().items() if any(k == p or k.startswith(f"{p}.") for p in s.params)}
    h = hashlib.sha256(json.dumps({"stage": name, "method": method, "out_dir": str(cfg.path().resolve()),
                                   "params": params}, sort_keys=True, default=str).encode())
    for dep in spec["deps"]:
        h.update(f"{dep}={_md5(_local(cfg, dep))}\n".encode())
    for code in code_deps(s.module, s.tracks):
        h.update(f"{code}={_md5(ROOT / code)}\n".encode())
    return h.hexdigest()


def outputs_present(cfg: Config, name: str, method: str | None = None) -> bool:
    s, lay = stage(name), Layout(cfg)
    return all(_local(cfg, out).exists() for out in _spec(cfg, name, method)["outs"]) and \
        (s.done is None or lay.path(s.done, method).exists())
