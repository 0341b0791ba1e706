"""Tests compose the *real* params.yaml and shrink it: tiny data, few steps, temp dirs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from cgankd.config import Config, load_config

ROOT = Path(__file__).resolve().parents[1]
# one OpenMP/BLAS thread per process, this one and every process a test starts (before torch is
# imported): tests run two at a time on two cores (make test), and oversubscribed OpenMP threads spin
os.environ.setdefault("OMP_NUM_THREADS", "1")
# torch.compile's C++ kernels without SIMD intrinsics, as inductor builds them on a CPU without AVX: the
# suite tests cgankd's compiled steps (inductor still traces, fuses and builds every kernel with g++),
# not inductor's vector code, and scalar kernels build in about half the time on a new machine (alone,
# cold: the fast-paths test 105 -> 61 s, the compiled shrunken pipeline 138 -> 92 s).
# `TORCHINDUCTOR_VEC_ISA_OK=1 make test` builds the vectorised ones.
os.environ.setdefault("TORCHINDUCTOR_VEC_ISA_OK", "0")
# the servers refuse root (cgankd/cli/root.py); CI's containers run as root, where the suite's servers
# are let run, and test_serve_security tests the refusal with the variable removed
if getattr(os, "geteuid", lambda: 1)() == 0:
    os.environ.setdefault("CGANKD_ALLOW_ROOT", "1")

# A pipeline small enough for seconds per stage, wired exactly like the default one.
SHRINK = [
    "data.n_per_class=12",
    "data.n_val_per_class=4",
    "data.n_test=200",
    "data.render.resolution=16",
    "teacher.arch=resnet8",
    "teacher.steps=40",
    "teacher.eval_every=20",
    "student.steps=40",
    "student.eval_every=20",
    "student.finetune_steps=20",
    "gan.iterations=12",
    "gan.g_ch=8",
    "gan.d_ch=8",
    "gan.checkpoint_every=4",
    "gan.ema_start=4",
    "gan.score_every=12",  # one check, at the end: the fakes come from the last generator, as a 12-iteration
                           # GAN's best of two noisy checks would be its half-trained one (tests that test
                           # the checks set their own)
    "gan.score_n=4",
    "fakes.n_per_class=16",
    "fakes.batch_size=100",
    "filter.burn_in=100",
    "data.rc.angle_step=1.0",
    "data.rc.n_val=40",
    "data.rc.n_test_per_angle=1",
    "fakes.n_labels=20",
    "fakes.n_per_label=4",
    "extractor.steps=20",
    "extractor.eval_every=10",
    "extractor.feat_dim=16",
    "subsample.dre_steps=40",
    "subsample.n_fake_train=200",
    "subsample.max_draw_factor=4",
    "quality.n_fakes=100",
    "quality.n_windows=5",
    "quality.window=0.2",
    "threads=1",  # two xdist workers on two cores: two threads each would oversubscribe them (OpenMP spins)
    "device=cpu",  # the suite's bit-identical checks hold on the CPU; CUDA tests override it (marker cuda)
]


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.delenv("CGANKD_PARENT_RUN_ID", raising=False)
    yield
    mlflow = sys.modules.get("mlflow")
    if mlflow is not None:  # MLflow keeps the last tracking URI set in-process: forget it, as a new process would
        mlflow.set_tracking_uri(None)


def shrunk(out_dir: Path, *extra: str) -> Config:
    return load_config(ROOT / "params.yaml", [*SHRINK, f"out_dir={out_dir}", *extra])


class PicklePayload:
    """Pickled, it asks the loader to call ``os.mkdir(path)``: a loader that runs it leaves the folder."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        import os

        return (os.mkdir, (str(self.path),))


# seconds per module in the last complete run of the suite, written by it (pytest_sessionfinish below) and
# committed: a fresh clone orders its modules by the times its last run measured
MODULE_SECONDS = ROOT / "tests" / "module_seconds.json"
_measured: dict[str, float] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Modules longest first (``make test`` hands whole modules to its two pytest-xdist workers,
    ``--dist loadscope --no-loadscope-reorder``: a module's fixtures are built once). A long module
    started last keeps one worker busy after the other has finished; the short ones fill the ends.
    A module not timed yet counts as long when it has a slow test; file order otherwise."""
    slow = {item.module.__name__ for item in items if item.get_closest_marker("slow")}
    timed = json.loads(MODULE_SECONDS.read_text()) if MODULE_SECONDS.is_file() else {}

    def seconds(module: str) -> float:
        return timed.get(module, 60.0 if module in slow else 0.0)

    items.sort(key=lambda item: -seconds(item.module.__name__))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Each module's seconds (set-up, call and tear-down of its tests: its module fixtures too); under
    xdist the controller receives every worker's reports."""
    module = Path(report.nodeid.split("::")[0]).stem
    _measured[module] = _measured.get(module, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After a complete, green run (every test module, no -k / -m selection), the measured module times
    replace tests/module_seconds.json; a worker, a partial or a red run leaves it."""
    opt = session.config.option
    if os.environ.get("PYTEST_XDIST_WORKER") or exitstatus != 0 or opt.keyword or opt.markexpr:
        return
    modules = {p.stem for p in (ROOT / "tests").glob("test_*.py")}
    if not modules <= _measured.keys():
        return
    text = json.dumps({m: round(_measured[m]) for m in sorted(modules, key=lambda m: -_measured[m])}, indent=0)
    tmp = MODULE_SECONDS.with_suffix(".tmp")
    tmp.write_text(text + "\n")
    tmp.replace(MODULE_SECONDS)




@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every xdist worker of this session sees (the session's own temp root without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def untracked_run(shared_dir: Path) -> Callable[[str], Path]:
    """``untracked_run(task)``: the artifacts folder of one shrunken `cgankd run` of that task, tracking
    off, made once per session by a fresh process (under a file lock: once for all xdist workers) and
    shared (the fault suite and the tracking-outage test compare against it, the DDP test starts from
    its data and teacher). Read it or copy it: a test that writes into it changes every later test's
    reference."""
    from filelock import FileLock

    def get(task: str) -> Path:
        root = shared_dir / f"untracked-{task}"
        with FileLock(str(root) + ".lock"):
            if not (root / "done").is_file():
                shutil.rmtree(root, ignore_errors=True)  # a half-made one, from a worker that failed
                root.mkdir()
                params = root / "params.yaml"
                params.write_text(yaml.safe_dump(shrunk(Path("artifacts"), f"task={task}").to_dict(),
                                                 sort_keys=False))
                env = {**os.environ, "CGANKD_TRACKING": "off"}
                done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "cgankd"), "run", "-p",
                                       str(params)], cwd=root, env=env, capture_output=True, text=True, timeout=900)
                assert done.returncode == 0, done.stderr[-3000:]
                (root / "done").touch()
        return root / "artifacts"

    return get
