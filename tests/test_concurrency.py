"""Two runs on one output folder: the second stops at once with one line naming the holder; a
killed holder leaves no stale lock. Two pipelines in different folders sharing one mlflow.db both
complete with every run recorded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from conftest import shrunk
from kit.shim import shim

from cgankd.base.lock import NAME, out_dir_lock


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(shim()), *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def write_params(tmp_path, out, name="params.yaml", *extra):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(shrunk(out, *extra).to_dict(), sort_keys=False))
    return str(path)


def test_a_second_writer_stops_with_one_line_naming_the_holder(tmp_path):
    out = tmp_path / "artifacts"
    params = write_params(tmp_path, out)
    with out_dir_lock(out):
        for args in (["prepare", "-p", params], ["run", "-p", params]):
            res = cli(*args)
            assert res.returncode == 2, res.stderr
            line = res.stderr.strip()
            assert len(line.splitlines()) == 1 and f"in use by pid {os.getpid()}" in line, line
        assert not (out / "prepared").exists()
        with out_dir_lock(out):  # re-entrant in the holder: a pipeline's stages run under its lock
            pass
    assert cli("prepare", "-p", params).returncode == 0  # released


def test_a_planted_lock_link_leaves_its_target_untouched(tmp_path):
    import pytest

    from cgankd.base.errors import CgankdError

    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    for kind in ("symlink", "hardlink"):
        out = tmp_path / kind
        out.mkdir()
        (out / NAME).symlink_to(target) if kind == "symlink" else os.link(target, out / NAME)
        with pytest.raises(CgankdError) as e:
            with out_dir_lock(out):
                pass
        assert str(out / NAME) in str(e.value) and "\n" not in str(e.value)
        assert target.read_text() == "keep me\n"


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    out = tmp_path / "artifacts"
    code = (f"from cgankd.base.lock import out_dir_lock\nwith out_dir_lock({str(out)!r}):\n"
            "    print('held', flush=True)\n    import time; time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    params = write_params(tmp_path, out)
    assert f"pid {proc.pid}" in cli("prepare", "-p", params).stderr
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (out / NAME).exists()  # the file stays; the kernel dropped the lock with its holder
    assert cli("prepare", "-p", params).returncode == 0


@pytest.mark.slow
def test_two_pipelines_sharing_one_mlflow_db_both_complete(tmp_path):
    db = tmp_path / "mlflow.db"
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{db}"}
    procs = []
    for name in ("a", "b"):
        # NOKD only: what is tested is two writers of one store, not the GAN (6 stages, not 10)
        params = write_params(tmp_path, tmp_path / name, f"{name}.yaml", f"seed={'ab'.index(name)}",
                              "student.methods=[nokd]")
        procs.append(subprocess.Popen([str(shim()), "run", "-p", params], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, env={**os.environ, **env}))
        time.sleep(1)  # both create the store and the experiment at nearly the same time
    for proc in procs:
        out, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, out[-3000:]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{db}")
    exp = client.get_experiment_by_name("cgankd")
    runs = client.search_runs([exp.experiment_id], max_results=500)
    parents = [r for r in runs if r.data.tags.get("cgankd.kind") == "pipeline"]
    assert sorted(r.info.run_name for r in parents) == ["objects/classification seed0", "objects/classification seed1"]
    for parent in parents:
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert len(children) == 6 and all(r.info.status == "FINISHED" for r in children)
        assert "nokd_test_acc" in parent.data.metrics
    versions = client.search_model_versions("name = 'cgankd-objects'")
    assert len(versions) == 2


def test_reconcile_tells_containers_and_reused_pids_apart():
    """A run is KILLED only when its process is gone from this boot and pid namespace: a run of a
    container sharing the hostname (another namespace) stays, a pid now held by a later process is gone."""
    import socket

    from cgankd.ops.reconcile import gone, process_tags

    mine = process_tags()
    assert not gone(mine)
    boot, ns, pid, start = mine["cgankd.process"].split("/")
    dead = str(2**22 + 12345)  # beyond pid_max: no such process here
    other_ns = {**mine, "cgankd.pid": dead, "cgankd.process": "/".join((boot, "pid:[1]", dead, "1"))}
    assert not gone(other_ns)  # another container with our hostname: its pid means nothing here
    assert gone({**mine, "cgankd.pid": dead, "cgankd.process": "/".join((boot, ns, dead, "1"))})
    reused = {**mine, "cgankd.process": "/".join((boot, ns, pid, str(int(start) - 1)))}
    assert gone(reused)  # our pid, but the run's process started earlier: it is gone, the pid reused
    assert not gone({**mine, "cgankd.host": socket.gethostname() + "-other"})
