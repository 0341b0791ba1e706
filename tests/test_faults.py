"""Fault injection over every stage of both tasks (shrunken config, fp32 CPU): each stage is killed
with SIGKILL at each failpoint in turn (cgankd/base/faults.py: as it starts, half-way through a progress
bar, with an output written to its temporary but not renamed), each run resuming from what the
killed one left (the GAN from its checkpoint), then run once more with the same command. After
each stage the interrupted folder must hold exactly what an uninterrupted run wrote
(bit-identical, apart from wall-clock fields), and no temporary is left beside the outputs.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import shrunk
from kit import cgankd_forked, files, leftovers, same

from cgankd.base.faults import ENV, POINTS
from cgankd.pipeline.spec import stage_calls

# stages too short at the shrunken size to have a progress bar: their "half" failpoint is never reached
NO_HALF = {"prepare", "export", "evaluate", "register"}


def run(cwd: Path, args: list[str], point: str | None = None) -> subprocess.CompletedProcess:
    """A new `cgankd` process (forked after the imports: ~40 of them per task), killed at ``point``."""
    env = {**os.environ, "CGANKD_TRACKING": "off"}
    env.pop(ENV, None)
    if point:
        env[ENV] = point
    return cgankd_forked(args, cwd, env)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_every_stage_killed_at_every_point_resumes_to_identical_outputs(tmp_path, task, untracked_run):
    cfg = shrunk(Path("artifacts"), f"task={task}")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    ref, hit = untracked_run(task).parent, tmp_path / "hit"  # ref: an uninterrupted run of the same params
    hit.mkdir()
    table = []
    for name, kwargs in stage_calls(cfg):
        args = [name, "-p", str(params), *(["--method", kwargs["method"]] if kwargs else [])]
        label = f"{name}[{kwargs['method']}]" if kwargs else name
        hits = []
        for point in POINTS:  # killed at each point in turn: each run resumes from what the last one left
            killed = run(hit, args, point)
            reached = not (point == "half" and name in NO_HALF)  # a failpoint that should be hit and is not fails
            assert killed.returncode == (-9 if reached else 0), (label, point, killed.returncode, killed.stderr[-2000:])
            hits.append(f"{point}: {'killed' if killed.returncode == -9 else 'not reached'}")
        again = run(hit, args)
        assert again.returncode == 0, (label, again.stderr[-3000:])
        out = hit / "artifacts"
        differ = sorted(f for f in files(out) if not same(out / f, ref / "artifacts" / f))
        assert not differ, (label, differ)
        assert not leftovers(out), (label, leftovers(out))
        table.append(f"| {label} | {', '.join(hits)} | completed, outputs identical, nothing left behind |")
    assert files(hit / "artifacts") == files(ref / "artifacts")
    print("\n".join(table))
