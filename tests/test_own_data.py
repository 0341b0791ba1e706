"""docs/own-data.md's worked example, shrunk: the embedded renderer's images written as a user's
folder of PNG files at 128 px (`cgankd data folder`), then the whole pipeline on it through the
imagefolder source, to an ONNX student that takes 128 x 128 images. And the regression layout
(PNGs + train.csv/test.csv) read back as the same data."""

from __future__ import annotations

import csv
import json

import numpy as np
import onnx
import pytest
from conftest import SHRINK, shrunk

from cgankd.cli import main

TINY_128 = [  # the suite's shrink, smaller again: 16x the pixels of the suite's 32
    "data.n_per_class=6", "data.n_val_per_class=2", "data.n_test=30", "teacher.batch_size=8", "teacher.steps=6",
    "teacher.eval_every=3", "student.batch_size=8", "student.steps=6", "student.eval_every=3",
    "student.finetune_steps=4", "extractor.batch_size=8", "extractor.steps=4", "extractor.eval_every=2",
    "gan.batch_size=8", "gan.iterations=4", "gan.checkpoint_every=2", "gan.ema_start=2", "gan.score_every=4",
    "fakes.n_per_class=4", "filter.burn_in=20", "subsample.dre_steps=8", "subsample.n_fake_train=40",
    "subsample.dre_batch_size=16", "quality.n_fakes=20", "quality.n_windows=2", "threads=1",
]


def cli(command: list[str], *overrides: str) -> int:
    """``cgankd COMMAND`` on the shrunk params, then ``overrides`` (later -S wins)."""
    return main([*command, *(a for s in [*SHRINK, *TINY_128, *overrides] for a in ("-S", s))])


@pytest.mark.slow
def test_an_image_folder_at_128_px_runs_the_whole_pipeline(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CGANKD_TRACKING", "off")
    folder = tmp_path / "parts"
    assert cli(["data", "folder", str(folder)], "data.render.resolution=128", f"out_dir={tmp_path / 'render'}") == 0
    said = capsys.readouterr().out
    assert "-S data.source=imagefolder" in said and "-S data.resolution=128" in said, said
    classes = sorted(p.name for p in (folder / "train").iterdir())
    assert classes == sorted(p.name for p in (folder / "test").iterdir()) and len(classes) == 10
    assert sum(1 for _ in (folder / "test").rglob("*.png")) == 30
    out = tmp_path / "artifacts"
    assert cli(["run"], "data.source=imagefolder", f"data.root={folder}", "data.resolution=128", f"out_dir={out}") == 0
    meta = json.loads((out / "prepared" / "meta.json").read_text())
    assert meta["source"] == "imagefolder" and meta["resolution"] == 128 and meta["classes"] == classes
    fakes = np.load(out / "fakes" / "fakes.npz")
    assert fakes["fake_images"].shape[1:] == (3, 128, 128)
    model = onnx.load(str(out / "export" / "student.onnx"))
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims[1:] == [3, 128, 128]
    assert "cGAN-KD" in (out / "report.md").read_text()


def test_a_regression_folder_reads_back_as_the_same_data(tmp_path, capsys):
    from cgankd.stages.prepare import build

    folder = tmp_path / "angles"
    assert cli(["data", "folder", str(folder)], "task=regression", f"out_dir={tmp_path / 'r'}") == 0
    assert "-S data.source=csv" in capsys.readouterr().out
    rows = list(csv.DictReader((folder / "train.csv").open()))
    assert rows and all((folder / r["filename"]).is_file() for r in rows)
    original = build(shrunk(tmp_path / "a", "task=regression"))
    again = build(shrunk(tmp_path / "b", "task=regression", "data.source=csv", f"data.root={folder}",
                         "data.resolution=16", "data.n_per_class=null"))
    np.testing.assert_array_equal(np.sort(again["test"].labels), np.sort(original["test"].labels))
    assert cli(["data", "folder", str(folder)], "task=regression") == 2  # not empty: nothing overwritten
