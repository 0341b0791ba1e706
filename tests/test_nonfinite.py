"""Nothing non-finite gets in or out (issue 27 items 1-2): NaN, infinite and negative parameters are
one-line errors before anything runs, and a diverging training stops its stage with one line
naming the stage, the step and the likely parameter, exit 2, and nothing written."""

import pytest
import yaml
from conftest import shrunk

from cgankd.cli import main
from cgankd.config.layout import Layout


@pytest.mark.parametrize("override", ["teacher.lr=.nan", "teacher.lr=.inf", "kd.blkd.temperature=.nan",
                                      "kd.fitnet.beta=.inf",
                                      "student.fake_ratio=.nan", "tracking.promotion_margin=.inf",
                                      "serve.body_timeout_s=.nan", "data.n_test=-1", "threads=-1", "seed=-3",
                                      "data.render.yaw_range=[0, .inf]"])
def test_non_finite_and_negative_params_are_one_line(override, capsys):
    assert main(["config", "-S", override]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"param {override.split('=')[0]}" in err, err


@pytest.mark.parametrize("stage, override, likely", [("train-teacher", "teacher.lr=1.0e+30", "the learning rate"),
                                                     ("train-gan", "gan.lr_d=1.0e+30", "gan.lr_d")])
def test_a_diverging_stage_stops_in_one_line_and_writes_nothing(tmp_path, capsys, stage, override, likely):
    out = tmp_path / "artifacts"
    cfg = shrunk(out, "gan.score_every=0")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    assert main(["prepare", "-p", str(params)]) == 0
    if stage == "train-gan":
        assert main(["train-teacher", "-p", str(params)]) == 0
    capsys.readouterr()
    assert main([stage, "-p", str(params), "-S", override]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert stage in err and "at step" in err and likely in err and "nothing was written" in err, err
    layout = Layout(cfg)
    assert not (layout.path("teacher") if stage == "train-teacher" else layout.path("gan")).exists()


def test_a_student_with_a_non_finite_metric_is_never_registered(tmp_path, capsys):
    import json

    cfg = shrunk(tmp_path / "artifacts")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    assert main(["prepare", "-p", str(params)]) == 0
    (cfg.path("export")).mkdir(parents=True)
    cfg.path("export", "parity.json").write_text(json.dumps({"method": "nokd"}))
    cfg.path("metrics").mkdir(exist_ok=True)
    cfg.path("metrics", "student_nokd.json").write_text(json.dumps({"test_acc": float("nan")}))
    capsys.readouterr()
    assert main(["register", "-p", str(params)]) == 2
    err = capsys.readouterr().err.strip()
    assert "test_acc is nan" in err and "nothing was registered" in err and err.count("\n") == 0
    assert not cfg.path("registry.json").exists()


BOMB = """student:
  methods: &a [nokd, nokd, nokd, nokd, nokd, nokd, nokd, nokd, nokd]
  x: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
  y: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
  z: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
  w: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
  v: [*e, *e, *e, *e, *e, *e, *e, *e, *e]
"""


def test_a_yaml_bomb_is_refused_before_it_expands(tmp_path):
    import time
    import tracemalloc

    from cgankd.base.errors import CgankdError
    from cgankd.config import load_config, parse_override

    path = tmp_path / "params.yaml"
    path.write_text(BOMB)
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(CgankdError) as e:
        load_config(path, runtime=False)
    took, peak = time.perf_counter() - t0, tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "anchors and aliases" in str(e.value) and took < 1.0 and peak < 100 * 2**20, (took, peak)
    with pytest.raises(CgankdError):
        parse_override("student.methods=&a [nokd, *a]")


def test_errors_quote_a_huge_value_in_bounded_form(capsys):
    huge = "[" + ",".join(["123456.789"] * 20000) + "]"  # quoted whole, this was a 200 KB line
    assert main(["config", "-S", f"data.render.yaw_range={huge}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and len(err) < 1000 and "characters)" in err, err[:300]


def test_a_typo_gets_the_closest_key(capsys):
    assert main(["config", "-S", "gan.target_scor=0.9"]) == 2
    assert "did you mean gan.target_score?" in capsys.readouterr().err
