"""The `serve` extra alone (pyproject.toml) in a fresh virtual environment: no torch, no MLflow, and it
serves an exported student whose answers match the full install's; commands that need another extra say
which, in one line. The Prefect flows are installed with the package (importable once `track` is)."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import shrunk
from kit.onnx_student import export, trained_student

from cgankd.serve.process import start_server, stop_server

ROOT = Path(__file__).resolve().parents[1]


def npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


@pytest.mark.slow
def test_the_serve_extra_alone_serves_a_student_without_torch(tmp_path):
    src = tmp_path / "src"  # a copy of the package: the build writes nothing into the repository
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for package in ("cgankd", "flows"):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = str(env_dir / "bin" / "python")
    pins = tmp_path / "constraints.txt"  # pip checks no hashes beside a local directory: the pins alone
    hashes = r" \\\n(?: +--hash=sha256:[0-9a-f]+(?: \\)?\n?)+"
    pins.write_text(re.sub(hashes, "\n", (ROOT / "constraints.txt").read_text()))
    pip = subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-c",
                          str(pins), f"{src}[serve]"], capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr[-3000:]
    probe = "import importlib.util as u; print([m for m in ('torch', 'mlflow', 'prefect', 'dvc', 'onnxruntime', " \
            "'fastapi') if u.find_spec(m)])"
    assert subprocess.run([py, "-c", probe], capture_output=True, text=True).stdout.strip() == \
        "['onnxruntime', 'fastapi']"
    where = "import importlib.util as u; print(u.find_spec('flows.pipeline').origin)"  # installed, not imported:
    flows = subprocess.run([py, "-c", where], capture_output=True, text=True, cwd=tmp_path).stdout  # needs prefect
    assert flows.strip().endswith("site-packages/flows/pipeline.py"), flows

    from cgankd.serve.runtime import load_model
    from cgankd.stages.prepare import build

    data = build(shrunk(tmp_path / "artifacts"))
    path = export(trained_student(data, "convnet_xs", steps=20), data, tmp_path / "student.onnx")
    images = data["test"].images[:8]
    want = load_model(str(path), "cpu").predict(images.astype(np.float32) / 255)
    proc, url = start_server(str(path), "--threads", "1", python=py, cwd=str(tmp_path))
    try:
        r = httpx.post(f"{url}/predict", content=npy(images), timeout=30)
        assert r.status_code == 200, r.text
        got = r.json()["predictions"]
        assert [p["class"] for p in got] == [w["class"] for w in want]
        assert "cgankd_predicted_inputs_total 8.0" in httpx.get(f"{url}/metrics").text
    finally:
        stop_server(proc)
    (tmp_path / "mlflow.db").write_bytes(b"")  # a registry to read: that needs the track extra
    # by path, never by a bare name that an index could serve (cgankd is on none)
    for argv, words in ((["run"], "run needs torch, which is not installed: pip install '<your cgankd checkout "
                                  "or wheel>[train]'"),
                        (["serve"], "MLflow is not available"), (["serve"], "checkout or wheel>[track]")):
        out = subprocess.run([py, "-m", "cgankd", *argv], capture_output=True, text=True, cwd=tmp_path)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1 and words in lines[0], out.stderr
    size = subprocess.run(["du", "-sm", str(env_dir)], capture_output=True, text=True).stdout.split()[0]
    print(f"serve-only venv: {size} MB ({sys.version_info.major}.{sys.version_info.minor})")


def test_every_installed_package_is_pinned_with_hashes():
    """constraints.txt (`make pins`) gives each pinned version the sha256 of its files, which uv checks at
    `make setup` whichever index serves them; the pins cover everything installed here, so nothing this
    environment runs came in unchecked (a new dependency without `make pins` fails here)."""
    from importlib import metadata

    text = (ROOT / "constraints.txt").read_text()
    entries = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)((?: \\\n +--hash=sha256:[0-9a-f]{64})+)", text, re.M)
    pins = {re.sub(r"[-_.]+", "-", name).lower(): version for name, version, _ in entries}
    assert len(pins) == text.count("==") and len(pins) > 250  # every pin carries its hashes
    import sysconfig

    here = sorted({sysconfig.get_paths()[k] for k in ("purelib", "platlib")})  # not setuptools' vendored copies
    installed = {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d.version
                 for d in metadata.distributions(path=here)}
    installed.pop("cgankd")
    installed.pop("pip", None)  # the venv's own installer, from python -m venv
    unpinned = {name: v for name, v in installed.items() if pins.get(name) != v}
    assert not unpinned, f"installed but not pinned at this version in constraints.txt (make pins): {unpinned}"
