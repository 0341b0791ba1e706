"""torchrun DDP on the CPU (gloo): the training step equals the one-process step with the same global
batch; the shrunken pipeline's training stages run under ``torchrun --nproc-per-node 2``, rank 0
alone writing files and MLflow runs; a two-process GAN killed half-way resumes to the weights of an
uninterrupted two-process run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import torch
import yaml
from conftest import ROOT, shrunk
from kit import files
from kit.shim import shim

from cgankd.base.faults import ENV

BIN = os.path.join(os.path.dirname(sys.executable), "cgankd")


def torchrun(n: int = 2) -> list[str]:
    """The real launcher on one machine (``--standalone``: a free local rendezvous port)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(n)]


# On the CPU each rank normalises with its own half batch (PyTorch's SyncBatchNorm is CUDA-only), so
# models with BatchNorm differ from the one-process run by more than rounding: the shrunken student's
# accuracy (40 val / 200 test images, near chance after 40 steps) must stay within this many points.
ACC_TOLERANCE = 10.0


def call(args: list[str], cwd: Path, ranks: int = 0, point: str | None = None,
         tracking: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop(ENV, None)
    if point:
        env[ENV] = point
    if not tracking:
        env["CGANKD_TRACKING"] = "off"
    # each rank (and the one process) is the fork server's cgankd (kit/shim.py): torchrun starts it as a program
    cmd = [*torchrun(ranks), "--no-python", str(shim()), *args] if ranks else [str(shim()), *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def ok(res: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert res.returncode == 0, res.stderr[-3000:]
    return res


@pytest.mark.slow
def test_a_step_under_torchrun_equals_the_one_process_step(tmp_path):
    """No BatchNorm: two and three ranks reach the one-process weights up to float order."""
    script = str(ROOT / "tests" / "kit" / "ddp_fit.py")
    ok(subprocess.run([sys.executable, script, str(tmp_path / "one.pt")], capture_output=True, text=True))
    for n in (2, 3):
        ok(subprocess.run([*torchrun(n), script, str(tmp_path / f"{n}.pt")], capture_output=True, text=True,
                          timeout=300))
    one = torch.load(tmp_path / "one.pt")
    for n in (2, 3):
        many = torch.load(tmp_path / f"{n}.pt")
        for k, v in one["last"].items():
            assert torch.allclose(v, many["last"][k], atol=1e-5, rtol=0), (n, k)
        assert [r["val_acc"] for r in one["history"]] == [r["val_acc"] for r in many["history"]]


@pytest.mark.slow
def test_training_stages_under_torchrun(tmp_path, untracked_run):
    cfg = shrunk(Path("artifacts"), "student.methods=[nokd]")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    p = ["-p", str(params)]
    one, two, cut = tmp_path / "one", tmp_path / "two", tmp_path / "cut"
    ref = untracked_run("classification")  # its data and teacher: neither reads student.methods
    for d in (one, two, cut):  # the same data and teacher for every run below
        for part in ("prepared", "teacher", "metrics/teacher.json"):
            copy = shutil.copytree if (ref / part).is_dir() else shutil.copy2
            (d / "artifacts" / part).parent.mkdir(parents=True, exist_ok=True)
            copy(ref / part, d / "artifacts" / part)

    # the GAN: two ranks, killed half-way (SIGKILL) and resumed == two ranks uninterrupted
    ok(call(["train-gan", *p], two, ranks=2))
    killed = call(["train-gan", *p], cut, ranks=2, point="half")
    assert killed.returncode != 0
    assert (cut / "artifacts" / ".checkpoints" / "gan.pt").is_file()
    assert not (cut / "artifacts" / "gan" / "generator.pt").exists()
    resumed = ok(call(["train-gan", *p], cut, ranks=2))
    first = next(line for line in resumed.stderr.splitlines() if line.startswith("train-gan ["))
    assert " 5/12 " in first, first  # resumed after the checkpoint at iteration 4 (killed at 6)
    a = torch.load(two / "artifacts" / "gan" / "generator.pt", weights_only=True)["state"]
    b = torch.load(cut / "artifacts" / "gan" / "generator.pt", weights_only=True)["state"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    # the student: two ranks with tracking on vs one process
    ok(call(["train-student", "--method", "nokd", *p], one))
    db = tmp_path / "mlflow.db"
    env_uri = os.environ["MLFLOW_TRACKING_URI"]
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{db}"
    try:
        ok(call(["train-student", "--method", "nokd", *p], two, ranks=2, tracking=True))
    finally:
        os.environ["MLFLOW_TRACKING_URI"] = env_uri
    m1 = json.loads((one / "artifacts" / "metrics" / "student_nokd.json").read_text())
    m2 = json.loads((two / "artifacts" / "metrics" / "student_nokd.json").read_text())
    for k in ("val_acc", "test_acc", "test_last_acc"):
        assert abs(m1[k] - m2[k]) <= ACC_TOLERANCE, (k, m1[k], m2[k])
    print("one process:", {k: m1[k] for k in ("val_acc", "test_acc")}, "two ranks:",
          {k: m2[k] for k in ("val_acc", "test_acc")})

    # only rank 0 wrote: the same files as one process, one MLflow run for the torchrun call
    trained = {f for f in files(two / "artifacts") if not f.startswith(("gan/", ".checkpoints/"))}
    assert trained == files(one / "artifacts"), trained ^ files(one / "artifacts")
    client = mlflow.MlflowClient(f"sqlite:///{db}")
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    assert [r.info.run_name for r in runs] == ["train-student[nokd]"], [r.info.run_name for r in runs]
    assert runs[0].info.status == "FINISHED" and runs[0].data.metrics["test_acc"] == m2["test_acc"]


def test_bad_world_sizes_and_stages_fail_in_one_line(tmp_path, monkeypatch):
    cfg = shrunk(tmp_path / "out")
    env = {**os.environ, "CGANKD_TRACKING": "off", "WORLD_SIZE": "3", "RANK": "1", "LOCAL_RANK": "1"}
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    res = subprocess.run([BIN, "prepare", "-p", str(params)], env=env, capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1].startswith("cgankd: error: torchrun: prepare does not train")

    from cgankd.base.errors import CgankdError
    from cgankd.compute import distributed

    assert distributed.check_batch(64, "gan.batch_size") == 64
    assert distributed.shard(torch.arange(4)).tolist() == [0, 1, 2, 3]
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(CgankdError, match=r"param gan.batch_size: 64 is not divisible by the torchrun world size 3"):
        distributed.check_batch(64, "gan.batch_size")
    assert distributed.check_batch(63, "gan.batch_size") == 21
    assert distributed.shard(torch.arange(7)).tolist() == [1, 4]
