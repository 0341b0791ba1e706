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
@pytest.mark.skipif(compiler_problem(torch.device("cpu")) is not None, reason="no C++ compiler for torch.compile")
def test_pipeline_without_mlflow_compiled_in_bf16(tmp_path):
    """Both fast paths in one run (each alone cost a whole pipeline: 195 s for the two on 2 cores, 121 s
    together with a cold kernel cache)."""
    out = tmp_path / "bf16"
    res = _run(out, "precision=bf16", "compile=true", block=True, tmp=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    notices = [ln for ln in res.stderr.splitlines() if "MLflow is not installed" in ln]
    assert len(notices) == 1 and "tracking off" in notices[0]
    _check_outputs(out)
    assert json.loads((out / "registry.json").read_text())["registered"] is False
    store.load_model(out / "students" / "cgankd" / "model.pt")  # files of the new format, weights only


cuda = pytest.mark.skipif(not cuda_usable(), reason="needs a CUDA GPU (run on the lent GPU machine)")


RUNTIMES = [("fp32", False, "default"), ("bf16", False, "default"), ("fp16", False, "default"),
            ("bf16", True, "default"), ("bf16", True, "reduce-overhead")]


def _gan_data(task: str) -> tuple[np.ndarray, np.ndarray, int | None]:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (256, 3, 32, 32), dtype=np.uint8)
    if task == "classification":
        return x, np.arange(256) % 10, 10
    return x, rng.random(256).round(2), None  # CcGAN: labels scaled to [0, 1]


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("precision,compile,mode", RUNTIMES)
def test_gan_trains_and_resumes_on_cuda(tmp_path, task, precision, compile, mode):
    from cgankd.compute.device import Runtime
    from cgankd.config import GanCfg
    from cgankd.gan.train import sample, train_gan

    rt = Runtime.from_config("cuda", precision, compile, mode)
    cfg = GanCfg(iterations=60, batch_size=64, z_dim=16, g_ch=16, d_ch=16, embed_dim=16, checkpoint_every=30,
                 ema_start=10, d_steps=2, score_every=0)
    x, y, classes = _gan_data(task)
    with pytest.raises(KeyboardInterrupt):
        train_gan(cfg, x, y, classes, 0, tmp_path / "ck.pt", stop_after=30, runtime=rt)
    g, hist = train_gan(cfg, x, y, classes, 0, tmp_path / "ck.pt", runtime=rt)
    assert [h["step"] for h in hist] == list(range(1, 61))
    assert all(np.isfinite(h["loss_d"]) and np.isfinite(h["loss_g"]) for h in hist)
    assert len({h["loss_d"] for h in hist}) > 50  # each step's own loss, not one overwritten graph output
    assert next(g.parameters()).device.type == "cuda"
    labels = np.arange(10) if classes else np.linspace(0, 1, 10)
    imgs = sample(g, labels, 16, torch.Generator().manual_seed(0))
    assert imgs.shape == (10, 3, 32, 32) and imgs.dtype == np.uint8


class _SyncErrors:
    """Turns CUDA's sync debug mode to "error" for iterations ``on`` .. ``off`` - 1 (counted by the
    runtime's step_begin): a host sync inside a training step then raises."""

    def __init__(self, on: int, off: int) -> None:
        self.on, self.off, self.step = on, off, 0

    def __call__(self) -> None:
        self.step += 1
        if self.step in (self.on, self.off):
            torch.cuda.set_sync_debug_mode("error" if self.step == self.on else 0)


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("precision,compile,mode", [RUNTIMES[0], RUNTIMES[2], RUNTIMES[4]])
def test_no_host_sync_in_ten_cuda_steps(tmp_path, monkeypatch, task, precision, compile, mode):
    """10 post-warm-up iterations of the GAN and of the student step under set_sync_debug_mode("error")."""
    from cgankd.compute.device import Runtime
    from cgankd.config import GanCfg, TrainCfg
    from cgankd.data.prepared import Meta, Prepared, Split
    from cgankd.gan.train import train_gan
    from cgankd.models import build_model
    from cgankd.train.loop import fit

    rt = Runtime.from_config("cuda", precision, compile, mode)
    x, y, classes = _gan_data(task)
    errors = _SyncErrors(6, 16)
    begin = Runtime.step_begin

    def step_begin(self: Runtime) -> None:
        errors()
        begin(self)

    monkeypatch.setattr(Runtime, "step_begin", step_begin)
    cfg = GanCfg(iterations=20, batch_size=64, z_dim=16, g_ch=16, d_ch=16, embed_dim=16, ema_start=2, d_steps=2,
                 score_every=0, checkpoint_every=1000)
    try:
        train_gan(cfg, x, y, classes, 0, tmp_path / "ck.pt", runtime=rt)
        assert errors.step == 20
        errors.step = 0
        meta = (Meta(task="classification", source="t", channels=3, resolution=32, classes=list("0123456789"))
                if classes else Meta(task="regression", source="t", channels=3, resolution=32))
        fit(build_model("convnet_xs", 3, classes or 1, 32).cuda(),
            Prepared(meta, {"train": Split(x, y), "val": Split(x[:20], y[:20])}),
            TrainCfg(steps=20, batch_size=64, eval_every=1000), seed=0, desc="t", fakes=Split(x, y),
            fake_ratio=1.0, runtime=rt)
    finally:
        torch.cuda.set_sync_debug_mode(0)


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
