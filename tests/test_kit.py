"""The test kit's own helpers, where a test's verdict depends on them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from kit import group_argv
from kit.shim import shim


def test_group_argv_reads_whole_command_lines_from_a_long_path(tmp_path):
    # a checkout at a long path: the interpreter's path alone is longer than ps's column
    deep = tmp_path.joinpath(*["a-checkout-at-a-long-path"] * 8)
    deep.mkdir(parents=True)
    (deep / "python").symlink_to(sys.executable)
    script = deep / "mlflow"
    script.write_text("import time\ntime.sleep(60)\n")
    want = [str(deep / "python"), str(script), "server", "--port", "5000"]
    proc = subprocess.Popen(want, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while (argv := group_argv(proc.pid)) != [want] and time.monotonic() < deadline:
            time.sleep(0.05)  # forked, not yet exec'd: the parent's command line
        assert argv == [want], argv
        assert len(" ".join(argv[0])) > 250
        assert group_argv(os.getpgid(0)) and not any(str(script) in a for v in group_argv(os.getpgid(0)) for a in v)
    finally:
        proc.kill()
        proc.wait()


def test_the_shim_runs_cgankd_as_its_console_script_would(tmp_path):
    """kit/shim.py: the command's exit code, streams, folder and environment are the caller's; a signal
    to the shim reaches the command, and the command dies with the shim."""
    cgankd = str(shim())
    env = {**os.environ, "CGANKD_TRACKING": "off"}
    bad = subprocess.run([cgankd, "prepare", "-S", "data.n_per_class=-1"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "data.n_per_class" in bad.stderr and not bad.stdout
    died = subprocess.run([cgankd, "prepare", "-S", f"out_dir={tmp_path / 'k'}"], cwd=tmp_path, timeout=60,
                          env={**env, "CGANKD_FAILPOINT": "start"}, capture_output=True)
    assert died.returncode == -signal.SIGKILL  # the command killed itself at a failpoint: so does the shim
    (tmp_path / "p.yaml").write_text("seed: 7\n")
    shown = subprocess.run([cgankd, "config", "-p", "p.yaml"], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=60)  # read from the caller's folder
    assert shown.returncode == 0 and "seed: 7" in shown.stdout
    for sig, code in ((signal.SIGINT, 130), (signal.SIGKILL, -signal.SIGKILL)):
        run = subprocess.Popen([cgankd, "run", "-S", f"out_dir={tmp_path / 'out'}"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        out = ""
        while "train-teacher" not in out:  # started, the run's lock taken: the command's own pid
            out += run.stdout.readline()
        pid = json.loads((tmp_path / "out" / ".cgankd.lock").read_text())["pid"]
        assert pid != run.pid and json.loads((tmp_path / "out" / ".cgankd.lock").read_text())["command"].startswith(
            "cgankd run")
        run.send_signal(sig)
        run.communicate(timeout=60)
        assert run.returncode == code
        deadline = time.monotonic() + 5
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:  # SIGINT: it ends; SIGKILL: killed
            time.sleep(0.05)
        assert not os.path.exists(f"/proc/{pid}")
