"""bench/gpu_check.sh, the one command a lent GPU machine runs, smoke-tested on the CPU with tiny
limits (GPU_CHECK_DEVICE=cpu): the preflight file comes first, every step's status is in the
summary, and a step that runs out of time leaves the other steps' results."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT, SHRINK


@pytest.mark.slow
def test_gpu_check_on_the_cpu_keeps_every_steps_results(tmp_path):
    out = tmp_path / "check"
    env = {**os.environ, "PYTHON": sys.executable, "GPU_CHECK_DEVICE": "cpu",
           "GPU_CHECK_TESTS_S": "2",  # cut short: a step that fails
           "GPU_CHECK_SPEED_S": "120", "GPU_CHECK_PATHS": "no-sync,bf16", "GPU_CHECK_GAN_CONFIGS": "8x4,16x4",
           "GPU_CHECK_PIPELINE_S": "240",
           "GPU_CHECK_PIPELINE_SETS": " ".join([*SHRINK, "compile=false", "precision=fp32", "student.methods=[nokd]",
                                                "gan.iterations=4", "gan.score_every=4"])}
    res = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh"), str(out)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 1, res.stdout[-3000:] + res.stderr[-3000:]
    machine = (out / "machine.txt").read_text()
    assert "ok: torch " in machine and "missing: a usable CUDA GPU" in machine and "ok: triton" in machine
    summary = (out / "summary.txt").read_text().splitlines()
    assert [s.split(":")[0] for s in summary[:4]] == ["preflight", "tests", "speed", "pipeline"], summary
    assert summary[0].startswith("preflight: ok") and summary[1].startswith("tests: timeout at its 2 s limit")
    assert summary[2].startswith("speed: ok") and summary[3].startswith("pipeline: ok"), summary
    assert summary[-1] == f"gpu_check: not ok: tests; the other steps' results are in {out}/"
    rows = json.loads((out / "train_speed.json").read_text())["rows"]
    assert [r["path"] for r in rows] == ["no-sync", "bf16"]
    assert all(r["gan_b8_w4_it_s"] > 0 and r["gan_b16_w4_it_s"] > 0 for r in rows)
    assert "| cpu | bf16 |" in (out / "train_speed.md").read_text()
    stages = (out / "stage_times.txt").read_text().splitlines()
    assert stages[0].startswith("stage prepare: ") and stages[-1].startswith("pipeline: "), stages
    assert any(s.startswith("stage train-teacher: ") for s in stages)
    assert not list(ROOT.glob("gpu_check*")), "logs land under DIR, not in the tree"


def test_gpu_check_names_what_is_missing_when_torch_does_not_import(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "torch.py").write_text("raise ImportError('libcudart.so.13: cannot open shared object file')\n")
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(site)}
    res = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh"), str(tmp_path / "c")], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    machine = (tmp_path / "c" / "machine.txt").read_text()
    assert "missing: torch (ImportError: libcudart.so.13" in machine
    summary = (tmp_path / "c" / "summary.txt").read_text()
    assert "torch does not import" in summary and "no usable CUDA GPU" not in summary
    assert "tests: skipped" in summary and "pipeline: skipped" in summary
