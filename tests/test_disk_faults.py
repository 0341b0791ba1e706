"""A full disk and a read-only folder, for real: a small tmpfs mounted by the test (root, as on
this project's machines and CI; skipped with the reason elsewhere). A stage that cannot write
stops with one line naming the output, exit 2; the previous outputs are byte-identical and no
temporary is left beside them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import shrunk

from cgankd import store
from cgankd.base.errors import CgankdError
from cgankd.cli import main
from cgankd.models import build_model


@pytest.fixture
def tiny_fs(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({out.stderr.strip() or 'not root'})")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(mnt: Path) -> None:
    """Leave the filesystem with no free block."""
    with open(mnt / "filler", "wb", buffering=0) as f:  # unbuffered: nothing left to flush at close
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def params(tmp_path: Path, out: Path, *extra: str) -> str:
    path = tmp_path / f"params{len(extra)}.yaml"
    path.write_text(yaml.safe_dump(shrunk(out, *extra).to_dict(), sort_keys=False))
    return str(path)


def test_a_full_disk_is_one_line_and_keeps_the_previous_outputs(tiny_fs, tmp_path, capsys):
    out = tiny_fs / "artifacts"
    assert main(["prepare", "-p", params(tmp_path, out)]) == 0
    before = snapshot(out)
    fill(tiny_fs)
    capsys.readouterr()
    assert main(["prepare", "-p", params(tmp_path, out, "data.n_per_class=10")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(out / "prepared") in err and "No space left on device" in err, err
    assert snapshot(out) == before  # the old prepared data, untouched; no temporary left
    assert not [p for p in tiny_fs.rglob("*.tmp")]


def test_a_model_file_on_a_full_disk_is_one_line(tiny_fs):
    fill(tiny_fs)
    model = build_model("convnet_xs", 3, 2, 16)
    with pytest.raises(CgankdError, match="model.pt: cannot write: No space left on device"):
        store.save_model(model, tiny_fs / "model.pt")
    assert not list(tiny_fs.glob(".model.pt*"))


def test_a_read_only_folder_is_one_line_and_keeps_the_previous_outputs(tiny_fs, tmp_path, capsys):
    out = tiny_fs / "artifacts"
    assert main(["prepare", "-p", params(tmp_path, out)]) == 0
    before = snapshot(out)
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_fs)], check=True)
    capsys.readouterr()
    assert main(["prepare", "-p", params(tmp_path, out, "data.n_per_class=10")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Read-only file system" in err, err
    assert snapshot(out) == before
