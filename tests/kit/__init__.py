"""Helpers shared by test files (imported from here, never from another test file): comparing two
run folders bit-for-bit less their wall-clock fields, running a command-line tool (``cgankd`` also
forked from a process that imported torch once), and writing a tiny MNIST in its standard layout."""

from __future__ import annotations

import gzip
import json
import multiprocessing
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np
import torch
import yaml

from kit.shim import path_with_shim, preloaded

BIN = Path(sys.executable).parent
# the wall-clock fields, by exact key (a substring match also dropped acceptance_rate and generated):
# the GAN checkpoint's training seconds, the minutes column of gan/quality.csv
CLOCK = {"seconds", "minutes"}
SKIP = {".cgankd.lock"}  # the run lock, not an output


def clocked(key: object) -> bool:
    return key in CLOCK


def strip_clock(obj):
    if isinstance(obj, dict):
        return {k: strip_clock(v) for k, v in obj.items() if not clocked(k)}
    if isinstance(obj, list):
        return [strip_clock(v) for v in obj]
    return obj


def same(a: Path, b: Path) -> bool:
    if a.suffix == ".json":
        return strip_clock(json.loads(a.read_text())) == strip_clock(json.loads(b.read_text()))
    if a.suffix == ".csv":
        ra, rb = a.read_text().splitlines(), b.read_text().splitlines()
        if len(ra) != len(rb) or not ra:
            return ra == rb
        keep = [i for i, h in enumerate(ra[0].split(",")) if not clocked(h)]
        def cells(row: str) -> list[str]:
            return [row.split(",")[i] for i in keep]

        return all(cells(x) == cells(y) for x, y in zip(ra, rb, strict=True))
    if a.suffix == ".npz":
        with np.load(a) as za, np.load(b) as zb:
            return sorted(za.files) == sorted(zb.files) and all(np.array_equal(za[k], zb[k]) for k in za.files)
    if a.suffix == ".pt":
        ta, tb = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
        return equal_state(strip_clock(ta), strip_clock(tb))
    return a.read_bytes() == b.read_bytes()


def equal_state(x, y) -> bool:
    if isinstance(x, torch.Tensor):
        return isinstance(y, torch.Tensor) and torch.equal(x, y)
    if isinstance(x, dict):
        return isinstance(y, dict) and x.keys() == y.keys() and all(equal_state(x[k], y[k]) for k in x)
    if isinstance(x, (list, tuple)):
        return len(x) == len(y) and all(equal_state(a, b) for a, b in zip(x, y, strict=True))
    return x == y


def files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name not in SKIP}


def leftovers(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob(".*") if p.name.endswith((".tmp", ".old"))]


def group_argv(pgid: int) -> list[list[str]]:
    """The full argument vectors of the processes in process group ``pgid``, read from
    ``/proc/PID/cmdline`` (``ps`` cuts a long command line to its column width, so a checkout at a long
    path hid the program's name behind the interpreter's path)."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if os.getpgid(int(d.name)) == pgid:
                argv = [a.decode(errors="replace") for a in (d / "cmdline").read_bytes().split(b"\0") if a]
                if argv:  # empty for a zombie
                    found.append(argv)
        except (ProcessLookupError, FileNotFoundError, PermissionError):
            pass  # gone between the listing and the read
    return found


def sh(*cmd: str, cwd: Path, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``cmd`` with the venv's tools first on PATH, ``cgankd`` the fork server's (kit/shim.py: the stages
    ``dvc repro`` starts by name skip their imports); ``env``: variables to set; ``check``: it must succeed."""
    env = {**os.environ, **(env or {}), "PATH": path_with_shim()}
    res = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, env=env, timeout=900)
    assert res.returncode == 0 or not check, f"{' '.join(cmd)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


# multiprocessing's fork server: one process imports torch, MLflow and cgankd once (no thread is started by
# those imports), then forks a child per command
FORKS = multiprocessing.get_context("forkserver")
FORKS.set_forkserver_preload(preloaded())


def _child(cwd: str, env: dict[str, str], log: str) -> None:
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)


def _cgankd_main(args: list[str], cwd: str, env: dict[str, str], log: str) -> None:
    _child(cwd, env, log)
    from cgankd.cli import main

    sys.exit(main(args))


def _python_main(code: str, args: list[str], cwd: str, env: dict[str, str], log: str) -> None:
    _child(cwd, env, log)
    sys.argv = ["-c", *args]
    exec(compile(code, "<forked>", "exec"), {"__name__": "__main__"})


def _forked(target, args: tuple, cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    fd, log = tempfile.mkstemp(prefix="cgankd-forked-", suffix=".log")  # not in cwd: not an output
    os.close(fd)
    log = Path(log)
    try:
        child = FORKS.Process(target=target, args=(*args, str(log)))
        child.start()
        child.join(timeout)
        if child.exitcode is None:
            child.kill()
            child.join()
            raise subprocess.TimeoutExpired(cmd, timeout)
        text = log.read_text(errors="replace")
        return subprocess.CompletedProcess(cmd, child.exitcode, text, text)
    finally:
        log.unlink()


def cgankd_forked(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    """``cgankd *args`` in a new process, as the console script runs it (its own pid, environment, folder,
    exit code; -9 when it SIGKILLs itself at a failpoint), forked from the fork server instead of started
    fresh: ~0.4 s instead of ~3 s of imports. stdout and stderr are one stream, returned as both."""
    return _forked(_cgankd_main, (list(args), str(cwd), dict(env)), ["cgankd", *args], timeout)


def python_forked(code: str, *args: str, env: dict[str, str], cwd: Path | None = None,
                  timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -c code *args`` in a new process forked from the fork server (as ``cgankd_forked``): the
    tests' folder is on its path."""
    return _forked(_python_main, (code, list(args), str(cwd or os.getcwd()), dict(env)),
                   ["python", "-c", "...", *args], timeout)


def dvc_repo(repo: Path, params: dict) -> Path:
    """A scratch git + DVC repository holding the package, the profiles, dvc.yaml and ``params``."""
    root = Path(__file__).resolve().parents[2]
    repo.mkdir(parents=True, exist_ok=True)
    shutil.copytree(root / "cgankd", repo / "cgankd", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(root / "profiles", repo / "profiles")
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(root / name, repo / name)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh("git", "init", "-q", cwd=repo)
    sh("dvc", "init", "-q", cwd=repo)
    shutil.copy(root / ".dvc" / "config", repo / ".dvc" / "config")
    return repo


def ran(res: subprocess.CompletedProcess) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", res.stdout))


RNG = np.random.default_rng(0)


def write_idx(path: Path, arr: np.ndarray, gz: bool) -> None:
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    (gzip.open(str(path) + ".gz", "wb") if gz else open(path, "wb")).write(data)


def make_mnist(root: Path, folder: str = "MNIST", n: int = 60, gz: bool = True) -> Path:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for prefix, k in (("train", n), ("t10k", n // 2)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", RNG.integers(0, 255, (k, 28, 28)), gz)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(k) % 10, gz)
    return root


def make_cifar(root: Path, hundred: bool = False) -> Path:
    base = root / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    base.mkdir(parents=True)
    key = "fine_labels" if hundred else "labels"
    batches = ["train"] if hundred else [f"data_batch_{i}" for i in range(1, 6)]
    for name in batches + ["test" if hundred else "test_batch"]:
        d = {"data": RNG.integers(0, 255, (40, 3072)).astype(np.uint8), key: list(np.arange(40) % 10)}
        pickle.dump(d, open(base / name, "wb"))
    return root


def authors_h5(path: Path, layout: str) -> Path:
    """A small file with the keys, dtypes and array shapes the authors' loaders read (cGAN-KD's
    ImageNet-100, CcGAN's Cell-200, RC-49 and UTKFace)."""
    n = 120
    with h5py.File(path, "w") as f:
        if layout == "imagenet100":  # ImageNet_128x128_100Class.h5 (here 16 px, 4 classes)
            f["images_train"] = RNG.integers(0, 255, (n, 3, 16, 16)).astype(np.uint8)
            f["labels_train"] = (np.arange(n) % 4).astype(np.int64)
            f["images_valid"] = RNG.integers(0, 255, (40, 3, 16, 16)).astype(np.uint8)
            f["labels_valid"] = (np.arange(40) % 4).astype(np.int64)
        elif layout.startswith("cell200"):  # Cell-200_64x64.h5: grey images, cell counts
            f["IMGs_grey"] = RNG.integers(0, 255, (n, 1, 16, 16)).astype(np.uint8)
            f["CellCounts"] = np.repeat(np.arange(1, 31), 4).astype(np.float64)
            if layout == "cell200-test":
                f["IMGs_grey_test"] = RNG.integers(0, 255, (30, 1, 16, 16)).astype(np.uint8)
                f["CellCounts_test"] = np.arange(1, 31).astype(np.float64)
        elif layout == "rc49":  # RC-49_64x64.h5: images, angles, chair types, the authors' train indices
            f["images"] = RNG.integers(0, 255, (n, 3, 16, 16)).astype(np.uint8)
            f["labels"] = np.repeat(np.linspace(0.1, 89.9, 30), 4)
            f["types"] = np.tile(np.arange(4), 30).astype(np.int64)
            f["indx_train"] = np.flatnonzero(np.arange(n) % 4 != 0).astype(np.int64)
        else:  # UTKFace_64x64.h5 of the CcGAN repository: images, ages, races
            f["images"] = RNG.integers(0, 255, (n, 3, 16, 16)).astype(np.uint8)
            f["labels"] = np.repeat(np.arange(1, 31), 4).astype(np.int64)
            f["races"] = np.tile(np.arange(4), 30).astype(np.int64)
    return path


def loaded_gan(cfg) -> dict:  # noqa: ANN001 (a Config)
    """prepare, the teacher and the extractor, then train-gan on ``gan.init`` (the authors' released GAN):
    its result, checked to have loaded rather than trained."""
    from cgankd.stages import prepare, train_extractor, train_gan, train_teacher

    prepare.run(cfg)
    train_teacher.run(cfg)
    train_extractor.run(cfg)
    result = train_gan.run(cfg)
    assert result["stop"] == "gan.init" and result["iterations"] == 0
    return result
