"""The test kit's own helpers, where a test's verdict depends on them."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from kit import group_argv


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
