import io

import pytest

from cgankd.base.io import atomic_path, write_json
from cgankd.base.progress import Progress


def test_progress_logs_one_line_per_decile_when_not_a_tty():
    out = io.StringIO()
    with Progress(1000, "work", stream=out) as bar:
        for _ in range(1000):
            bar.update(1, loss=0.5)
    lines = out.getvalue().splitlines()
    assert len(lines) == 11 and lines[-1].startswith("work [####################] 1000/1000")


def test_atomic_path_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "m.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text().strip().startswith("{") and list(tmp_path.iterdir()) == [target]


def test_atomic_outputs_get_the_usual_file_mode(tmp_path):
    import os

    write_json(tmp_path / "a.json", {})
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~mask


def test_progress_eta_counts_only_new_work_after_a_resume():
    out = io.StringIO()
    bar = Progress(100, "gan", stream=out, initial=50)
    bar.start -= 10.0  # 10 s for the first 10 new steps -> 40 s left, not 4 s
    bar.update(10)
    assert "eta   40s" in out.getvalue().splitlines()[-1]


def test_a_terminal_gets_tqdm_with_the_losses():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    with Progress(100, "train-gan", stream=out) as bar:
        for _ in range(100):
            bar.update(1, loss_d=0.25)
    text = out.getvalue()
    assert "100/100" in text and "loss_d=0.25" in text and "it/s" in text  # tqdm's rate and postfix


def test_private_files_are_0600_on_rewrite_and_never_follow_a_link(tmp_path):
    """client.env, mlflow-auth.ini, the stack's logs, the tracking backlog and the sqlite init lock:
    an existing file of another mode becomes 0600; a symbolic link planted at the path is refused,
    so nothing is written (or appended) through it to where the link points."""
    import stat

    from cgankd.base.io import open_private
    from cgankd.ops.backlog import record

    loose = tmp_path / "client.env"
    loose.write_text("old")
    loose.chmod(0o644)
    with open_private(loose) as f:
        f.write("SECRET=1\n")
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600 and loose.read_text() == "SECRET=1\n"
    target = tmp_path / "elsewhere"
    target.write_text("")
    link = tmp_path / "tracking-backlog.jsonl"
    link.symlink_to(target)
    for append in (False, True):
        with pytest.raises(OSError):
            open_private(link, append)
    with pytest.raises(OSError):
        record(link, None, {"kind": "metric"})  # type: ignore[arg-type]
    assert target.read_text() == ""
