"""Nothing half-made is ever promoted or served, promotions are serialised, and killed runs are
reconciled (cgankd/ops/registry_lock.py, cgankd/ops/reconcile.py), with tracking on (sqlite):

- register killed (SIGKILL) after the ONNX version, after the PyTorch version, and after the
  pairing tags: promote and serve skip or refuse what it left, and the next register deletes it
  and pairs its own versions by tags, not by version numbers;
- a promotion killed after its decision moves no alias; two promotions at once wait for the
  registry's lock and end with the better version champion; one killed between the ONNX version's
  alias and its PyTorch twin's is repaired by the next;
- a process killed inside its run leaves it RUNNING; the next pipeline run (or tracking-gc) marks
  it KILLED with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import shrunk
from kit import python_forked

from cgankd.base.errors import CgankdError
from cgankd.base.faults import ENV

NAME = "cgankd-objects"

# one register in its own process: an untrained student (the registry does not care), its ONNX
REGISTER = r"""
import sys, torch
from pathlib import Path
from conftest import shrunk
from kit.onnx_student import export
from cgankd.models import build_model
from cgankd.stages.prepare import build
from cgankd.ops.model_registry import register_student
from cgankd.ops.tracking import stage_run
from cgankd.serve.pyfunc import StudentModel
out, metric = Path(sys.argv[1]), float(sys.argv[2])
cfg = shrunk(out)
data = build(cfg)
m = data.meta
torch.manual_seed(0)
model = build_model("convnet_s", m.channels, len(m.classes), m.resolution).eval()
onnx_path = export(model, data, out / "student.onnx")
sample = torch.rand(2, m.channels, m.resolution, m.resolution)
with stage_run(cfg, "register") as tracker:
    print(register_student(cfg, onnx_path, model, sample, metric, {"metric_name": "test_acc", "method": "nokd",
                                                                     "pyfunc": StudentModel()}, tracker))
"""

PROMOTE = r"""
import sys
import mlflow.tracking
from cgankd.ops.model_registry import promote
print("ready", flush=True)  # imported: what is left is the promotion itself
print(promote(sys.argv[1], int(sys.argv[2]), 0.0, force=sys.argv[3:] == ["force"]))
"""


def _python(code: str, *args: str, point: str | None = None, wait: bool = True):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    env.pop(ENV, None)
    if point:
        env[ENV] = point
    if not wait:
        return subprocess.Popen([sys.executable, "-c", code, *args], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    return python_forked(code, *args, env=env)  # a new process, forked after torch's and MLflow's imports


def _client():
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    return MlflowClient()


def _versions(client, name: str) -> dict[int, dict]:
    return {int(v.version): v.tags for v in client.search_model_versions(f"name = '{name}'")}


@pytest.mark.slow
def test_a_killed_register_leaves_nothing_promoted_or_served_and_the_next_one_cleans_up(tmp_path):
    from cgankd.ops.model_registry import fetch_registered, promote

    out = tmp_path / "artifacts"
    first = _python(REGISTER, str(out), "50")
    assert first.returncode == 0, first.stderr[-3000:]
    client = _client()
    for point in ("register-onnx", "register-pytorch", "register-tags"):
        killed = _python(REGISTER, str(out), "90", point=point)
        assert killed.returncode == -9, (point, killed.returncode, killed.stderr[-2000:])  # the point was reached
        half = max(_versions(client, NAME))
        assert "test_metric" not in _versions(client, NAME)[half], point
        assert int(client.get_model_version_by_alias(NAME, "champion").version) == 1, point
        assert promote(NAME, None, 0.0)["version"] == 1, point  # the newest *complete* version
        with pytest.raises(CgankdError, match="is incomplete"):
            promote(NAME, half, 0.0)
        with pytest.raises(CgankdError, match="is incomplete"):
            fetch_registered(f"models:/{NAME}/{half}", tmp_path / "dl")
    again = _python(REGISTER, str(out), "60")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "deleted what an interrupted register left" in again.stderr
    onnx, torch_ = _versions(client, NAME), _versions(client, f"{NAME}-pytorch")
    assert all("test_metric" in tags for tags in onnx.values()), onnx  # nothing half-made is left
    assert len(onnx) == len(torch_) == 2
    for v, tags in onnx.items():
        twin = int(tags["pytorch_version"])
        assert torch_[twin]["onnx_version"] == str(v)  # paired by tags, both ways
    assert int(client.get_model_version_by_alias(NAME, "champion").version) == max(onnx)  # 60 > 50


@pytest.mark.slow
def test_two_promotions_at_once_wait_for_the_lock_and_the_better_one_wins(tmp_path):
    from cgankd.ops.model_registry import promote
    from cgankd.ops.registry_lock import registry_lock
    from cgankd.ops.tracking import tracking_uri

    out = tmp_path / "artifacts"
    for metric in ("30", "50", "40"):  # v1 champion; v2 and v3 both beat it
        res = _python(REGISTER, str(out), metric)
        assert res.returncode == 0, res.stderr[-3000:]
    client = _client()
    client.set_registered_model_alias(NAME, "champion", "1")  # back to v1: v2 and v3 now race for it
    killed = _python(PROMOTE, NAME, "2", point="promote")  # decided, killed before the alias moved
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert int(client.get_model_version_by_alias(NAME, "champion").version) == 1
    with registry_lock(tracking_uri()):
        procs = [_python(PROMOTE, NAME, v, wait=False) for v in ("3", "2")]
        assert [p.stdout.readline().strip() for p in procs] == ["ready", "ready"]
        time.sleep(3)
        assert all(p.poll() is None for p in procs)  # both wait while another holds the lock
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
    assert int(client.get_model_version_by_alias(NAME, "champion").version) == 2  # 50 beats 40 in either order
    # a promotion killed between the ONNX version's move and its PyTorch twin's splits the pair; run again, the
    # promotion finds v3 champion already and moves the twin too
    split = _python(PROMOTE, NAME, "3", "force", point="promote-twin")
    assert split.returncode == -9, split.stderr[-2000:]

    def twins() -> tuple[str, str]:
        onnx = client.get_model_version_by_alias(NAME, "champion")
        torch_champion = client.get_model_version_by_alias(f"{NAME}-pytorch", "champion")
        return onnx.tags["pytorch_version"], str(torch_champion.version)

    assert len(set(twins())) == 2  # split: the twin of v3 is not the PyTorch champion
    assert promote(NAME, 3, 0.0)["reason"] == "is the champion already"
    assert len(set(twins())) == 1  # repaired


def _killed_inside_a_run(out: Path, stage: str) -> None:
    """A process that starts a stage's MLflow run and is SIGKILLed inside it."""
    code = ("import os, signal, sys\nfrom pathlib import Path\nfrom conftest import shrunk\n"
            "from cgankd.ops.tracking import stage_run\n"
            "with stage_run(shrunk(Path(sys.argv[1])), sys.argv[2]):\n    os.kill(os.getpid(), signal.SIGKILL)\n")
    assert _python(code, str(out), stage).returncode == -9


def test_a_killed_run_is_marked_killed_by_the_next_run(tmp_path):
    from cgankd.ops.tracking import pipeline_run

    cfg = shrunk(tmp_path / "artifacts")
    _killed_inside_a_run(tmp_path / "artifacts", "train-teacher")
    client = _client()
    exp = client.get_experiment_by_name(cfg.tracking.experiment)
    [run] = client.search_runs([exp.experiment_id])
    assert run.info.status == "RUNNING"  # nobody ended it
    with pipeline_run(cfg):
        pass
    run = client.get_run(run.info.run_id)
    assert run.info.status == "KILLED"
    assert "was gone at" in run.data.tags["cgankd.reconciled"]
    assert "pipeline run" in run.data.tags["cgankd.reconciled"]
    statuses = {r.info.status for r in client.search_runs([exp.experiment_id])}
    assert statuses == {"KILLED", "FINISHED"}  # the new run ended itself; none is left RUNNING


def test_tracking_gc_marks_killed_runs_and_leaves_live_ones(tmp_path):
    from cgankd.cli import main
    from cgankd.ops.tracking import stage_run

    cfg = shrunk(tmp_path / "artifacts")
    _killed_inside_a_run(tmp_path / "artifacts", "train-gan")
    client = _client()
    with stage_run(cfg, "train-student") as live:  # this process is alive: its run stays RUNNING
        assert main(["tracking-gc", "-S", f"out_dir={tmp_path / 'artifacts'}"]) == 0
        exp = client.get_experiment_by_name(cfg.tracking.experiment)
        status = {r.data.tags.get("mlflow.runName"): r.info.status for r in client.search_runs([exp.experiment_id])}
        assert client.get_run(live.run_id).info.status == "RUNNING"
    assert sorted(status.values()) == ["KILLED", "RUNNING"], status


def test_serve_on_an_empty_registry_says_what_to_run_and_creates_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}  # the default, ./mlflow.db
    bin_ = os.path.join(os.path.dirname(sys.executable), "cgankd")
    res = subprocess.run([bin_, "serve"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0, res.stderr
    assert "no model registry yet (mlflow.db does not exist): run `make demo`" in res.stderr
    assert list(tmp_path.iterdir()) == []  # no empty database left behind
