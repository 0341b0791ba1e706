"""The pipeline knows when its fakes are worth using: train-gan to a target or a time budget on
the shrunken real config, make-fakes' verdict, the report's line, and student.skip_weak_fakes."""

import csv
import io

import pytest
from conftest import shrunk

from cgankd.base.errors import CgankdError
from cgankd.base.io import read_json
from cgankd.config.layout import Layout
from cgankd.pipeline.spec import stage
from cgankd.quality.relative import absolute_score, relative_score
from cgankd.quality.verdict import judge, trend


def test_relative_score_both_directions():
    assert relative_score(38.0, 76.0, True) == pytest.approx(0.5)
    assert relative_score(20.0, 10.0, False) == pytest.approx(0.5)  # MAE: twice the teacher's real error
    assert absolute_score(0.5, 10.0, False) == pytest.approx(20.0)
    assert absolute_score(0.9, 80.0, True) == pytest.approx(72.0)


def test_the_threshold_is_measured_per_task_and_an_override_wins(tmp_path):
    assert shrunk(tmp_path).min_relative_score == 0.85
    assert shrunk(tmp_path, "task=regression").min_relative_score == 0.45
    assert shrunk(tmp_path, "task=regression", "fakes.min_relative_score=0.7").min_relative_score == 0.7


def test_verdict_weak_rising_gives_a_budget():
    steps, curve, minutes = [200, 400, 600, 800], [0.10, 0.12, 0.14, 0.16], [2.0, 4.0, 6.0, 8.0]
    assert trend(steps, curve) == pytest.approx(0.1)
    v = judge(0.15, 0.85, 800, steps, curve, minutes, "teacher accuracy 12% on fakes vs 80% on real")
    assert v.weak and v.line.startswith("fakes: too weak for cGAN-KD")
    # 0.70 to go at 0.1 per 1k: 7k more, doubled for a flattening curve -> cap 15k; 10 min per 1k -> 150 min
    assert v.line.endswith("-S gan.target_score=0.85 -S gan.iterations=15000")  # the files: no wall clock
    assert v.full.endswith("-S gan.target_score=0.85 -S gan.iterations=15000 -S gan.max_minutes=150 "
                           "(a GPU budget: docs/gpu.md)") and "\n" not in v.full
    assert v.metrics()["weak_fakes"] == 1.0 and v.metrics()["raw_relative_label_score"] == 0.15


def test_verdict_flat_and_good():
    flat = judge(0.2, 0.85, 800, [200, 400, 600, 800], [0.2, 0.2, 0.19, 0.18], [1, 2, 3, 4], "x")
    assert flat.weak and "not rising" in flat.line and "gan.iterations=" not in flat.line
    good = judge(0.9, 0.85, 4000, [1000, 2000], [0.5, 0.9], [5, 10], "x")
    assert not good.weak and good.line.startswith("fakes: strong enough for cGAN-KD to help, not sure to")


def _rows(path):
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_train_gan_to_a_target_a_budget_and_on_again(tmp_path):
    cfg = shrunk(tmp_path / "a", "gan.target_score=0.01", "gan.score_every=6")
    for name in ("prepare", "train-teacher"):
        stage(name).run(cfg)
    layout = Layout(cfg)
    res = stage("train-gan").run(cfg)
    assert res["stop"] == "target" and res["iterations"] == 6  # the first check (score_every=6) reaches it
    rows = _rows(layout.path("gan").parent / "quality.csv")
    assert [r["step"] for r in rows] == ["6"] and rows[-1]["stop"] == "target"
    # the kept generator's score is its confirming one (other fakes than the check's)
    assert float(rows[0]["confirm_relative"]) == pytest.approx(res["best_relative_score"], abs=1e-3)
    assert rows[0]["confirm_relative"] != rows[0]["relative_score"]
    assert layout.path("gan").is_file() and layout.path("gan_last").is_file()
    # out of reach now: trains on from the checkpoint to the cap
    res2 = stage("train-gan").run(shrunk(tmp_path / "a", "gan.target_score=2.0", "gan.score_every=6"))
    assert res2["stop"] == "iterations" and res2["iterations"] == 12
    assert [r["step"] for r in _rows(layout.path("gan").parent / "quality.csv")] == ["6", "12"]
    # a fresh GAN with a budget of 3 fake-clock seconds: one reading per iteration
    layout.path("gan_checkpoint").unlink()
    ticks = iter(range(10_000))
    res3 = stage("train-gan").run(shrunk(tmp_path / "a", "gan.max_minutes=0.05", "gan.score_every=6"),
                                   clock=lambda: float(next(ticks)))
    assert res3["stop"] == "time" and res3["iterations"] < 12


def test_weak_fakes_are_named_and_can_be_skipped(tmp_path):
    cfg = shrunk(tmp_path, "fakes.min_relative_score=2.0", "student.skip_weak_fakes=true")
    for name in ("prepare", "train-teacher", "train-extractor", "train-gan", "make-fakes"):
        stage(name).run(cfg)
    fakes = read_json(cfg.path("metrics", "fakes.json"))
    assert fakes["weak_fakes"] == 1.0 and fakes["verdict"].startswith("fakes: too weak for cGAN-KD")
    assert fakes["raw_relative_label_score"] == pytest.approx(
        fakes["quality_raw_label_score"] / read_json(cfg.path("metrics", "teacher.json"))["val_acc"])
    stage("train-student").run(cfg, method="nokd")
    out = stage("train-student").run(cfg, method="cgankd")
    assert "skipped" in out and not Layout(cfg).path("student", "cgankd").exists()
    assert Layout(cfg).path("student_skipped", "cgankd").is_file()
    assert stage("export").run(cfg)["method"] == "nokd"
    metrics = stage("evaluate").run(cfg)
    assert metrics["cgankd_skipped"] == 1.0 and metrics["fakes_weak"] == 1.0
    report = cfg.path("report.md").read_text()
    assert fakes["verdict"] in report and "cGAN-KD was skipped" in report
    # the same fakes without the skip: the student trains, and the report still names the verdict
    cfg2 = shrunk(tmp_path, "fakes.min_relative_score=2.0")
    assert "test_acc" in stage("train-student").run(cfg2, method="cgankd")
    assert not Layout(cfg2).path("student_skipped", "cgankd").exists()
    stage("export").run(cfg2)
    stage("evaluate").run(cfg2)
    assert fakes["verdict"] in cfg2.path("report.md").read_text()


@pytest.mark.parametrize("override, key", [("gan.target_score=.nan", "gan.target_score"),
                                           ("gan.target_score=0", "gan.target_score"),
                                           ("gan.max_minutes=-1", "gan.max_minutes"),
                                           ("gan.max_minutes=.inf", "gan.max_minutes"),
                                           ("fakes.min_relative_score=.nan", "fakes.min_relative_score")])
def test_bad_goals_are_one_line_errors(tmp_path, override, key):
    with pytest.raises(CgankdError) as e:
        shrunk(tmp_path, override)
    assert key in str(e.value) and "\n" not in str(e.value)
