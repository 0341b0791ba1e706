"""The shrunken pipeline end to end on the fast paths (bf16, torch.compile) and on a machine without
MLflow (the lent GPU box: torch + numpy + PyYAML): tracking off with a one-line notice, outputs as
usual. And the CUDA paths, run on the lent GPU machine (skipped without a GPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, SHRINK

from cgankd import store
from cgankd.compute.device import compiler_problem, cuda_usable

BLOCK = '''
import importlib.abc, sys
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"mlflow", "dvc", "prefect", "fastapi"}:
            raise ImportError(f"No module named {name!r} (blocked: a bare GPU box)")
sys.meta_path.insert(0, _Block())
'''


def _run(out: Path, *sets: str, block: bool = False, tmp: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("CGANKD_TRACKING", None)
    if block:
        site = tmp / "site"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(BLOCK)
        env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    else:
        env["CGANKD_TRACKING"] = "off"
    args = [sys.executable, "-m", "cgankd", "run", "-p", str(ROOT / "params.yaml"), "-S", f"out_dir={out}"]
    for s in (*SHRINK, *sets):
        args += ["-S", s]
    return subprocess.run(args, capture_output=True, text=True, cwd=tmp, env=env, timeout=1200)


def _check_outputs(out: Path) -> None:
    report = json.loads((out / "metrics.json").read_text()) if (out / "metrics.json").exists() else {}
    for method in ("nokd", "cgankd"):
        m = json.loads((out / "metrics" / f"student_{method}.json").read_text())
        assert np.isfinite(m["test_acc"])
    assert (out / "report.md").is_file() and (out / "export" / "student.onnx").is_file()
    assert report or (out / "registry.json").is_file()
    assert not list(out.rglob(".*.tmp"))


@pytest.mark.slow
def test_pipeline_without_mlflow_in_bf16(tmp_path):
    out = tmp_path / "bf16"
    res = _run(out, "precision=bf16", block=True, tmp=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    notices = [ln for ln in res.stderr.splitlines() if "MLflow is not installed" in ln]
    assert len(notices) == 1 and "tracking off" in notices[0]
    _check_outputs(out)
    assert json.loads((out / "registry.json").read_text())["registered"] is False
    store.load_model(out / "students" / "cgankd" / "model.pt")  # files of the new format, weights only


@pytest.mark.slow
@pytest.mark.skipif(compiler_problem(torch.device("cpu")) is not None, reason="no C++ compiler for torch.compile")
def test_pipeline_with_compile(tmp_path):
    out = tmp_path / "compiled"
    res = _run(out, "compile=true", tmp=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    _check_outputs(out)


cuda = pytest.mark.skipif(not cuda_usable(), reason="needs a CUDA GPU (run on the lent GPU machine)")


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("precision,compile", [("fp32", False), ("bf16", False), ("fp16", False), ("bf16", True)])
def test_gan_trains_and_resumes_on_cuda(tmp_path, precision, compile):
    from cgankd.compute.device import Runtime
    from cgankd.config import GanCfg
    from cgankd.gan.train import sample, train_gan

    rt = Runtime.from_config("cuda", precision, compile)
    cfg = GanCfg(iterations=60, batch_size=64, z_dim=16, g_ch=16, d_ch=16, embed_dim=16, checkpoint_every=30,
                 ema_start=10)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (256, 3, 32, 32), dtype=np.uint8), np.arange(256) % 10
    with pytest.raises(KeyboardInterrupt):
        train_gan(cfg, x, y, 10, 0, tmp_path / "ck.pt", stop_after=30, runtime=rt)
    g, hist = train_gan(cfg, x, y, 10, 0, tmp_path / "ck.pt", runtime=rt)
    assert [h["step"] for h in hist] == list(range(1, 61))
    assert all(np.isfinite(h["loss_d"]) for h in hist)
    assert next(g.parameters()).device.type == "cuda"
    imgs = sample(g, np.arange(10), 16, torch.Generator().manual_seed(0))
    assert imgs.shape == (10, 3, 32, 32) and imgs.dtype == np.uint8


@pytest.mark.cuda
@cuda
def test_pipeline_on_cuda_writes_cpu_readable_files(tmp_path):
    out = tmp_path / "gpu"
    res = _run(out, "device=cuda", "precision=bf16", "student.methods=[nokd,cgankd,blkd,fitnet,vkd]", tmp=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    _check_outputs(out)
    for path, kind in ((out / "teacher" / "model.pt", "image_model"), (out / "gan" / "generator.pt", "gan_generator"),
                       (out / "vkd" / "generator.pt", "vkd_generator"), (out / "extractor" / "model.pt", "extractor")):
        _, state = store.read(path, kind)
        assert all(t.device.type == "cpu" for t in state.values())
