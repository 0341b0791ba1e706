"""The test kit's own helpers, where a test's verdict depends on them."""

from __future__ import annotations

import os
import subprocess
import sys

from kit import group_argv


def test_group_argv_reads_whole_command_lines_from_a_long_path(tmp_path):
    # a checkout at a long path: the interpreter's path alone is longer than ps's column
    deep = tmp_path.joinpath(*["a-checkout-at-a-long-path"] * 8)
    deep.mkdir(parents=True)
    (deep / "python").symlink_to(sys.executable)
    script = deep / "mlflow"
    script.write_text("import time\ntime.sleep(60)\n")
    proc = subprocess.Popen([str(deep / "python"), str(script), "server", "--port", "5000"],
                            start_new_session=True)
    try:
        argv = group_argv(proc.pid)
        assert argv == [[str(deep / "python"), str(script), "server", "--port", "5000"]], argv
        assert len(" ".join(argv[0])) > 250
        assert group_argv(os.getpgid(0)) and not any(str(script) in a for v in group_argv(os.getpgid(0)) for a in v)
    finally:
        proc.kill()
        proc.wait()
