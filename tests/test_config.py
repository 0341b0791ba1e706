import pytest
from conftest import ROOT

import cgankd
from cgankd.base.errors import CgankdError
from cgankd.cli import main
from cgankd.config import Config, load_config, parse_override


def test_params_yaml_matches_the_documented_defaults():
    assert load_config(ROOT / "params.yaml").to_dict() == Config().to_dict()


def test_overrides_are_typed():
    cfg = load_config(ROOT / "params.yaml", ["filter.rho=0.7", "data.source=mnist", "data.root=/d",
                                             "student.methods=[nokd]", "data.n_per_class=null"])
    assert cfg.filter.rho == 0.7 and cfg.data.source == "mnist" and cfg.data.root == "/d"
    assert cfg.student.methods == ["nokd"] and cfg.data.n_per_class is None
    assert parse_override("a.b=1") == ("a.b", 1)


@pytest.mark.parametrize("override, key", [
    ("filter.rho=1.5", "filter.rho"),
    ("filter.rho=0", "filter.rho"),
    ("filter.rhoo=0.5", "filter.rhoo"),
    ("nosuch=1", "nosuch"),
    ("teacher.steps=ten", "teacher.steps"),
    ("task=ranking", "task"),
    ("student.mode=sometimes", "student.mode"),
    ("filter.enabled=3", "filter.enabled"),
    ("gan.ccgan.vicinity=wide", "gan.ccgan.vicinity"),
    ("profile=nosuch", "profile"),
    ("profile=3", "profile"),
    ("subsample.m_quantile=0", "subsample.m_quantile"),
    ("subsample.holdout=1.0", "subsample.holdout"),
    ("gan.stop_patience=0", "gan.stop_patience"),
    ("gan.score_every=-1", "gan.score_every"),
    ("gan.ccgan.kappa=-1", "gan.ccgan.kappa"),
    ("gan.ccgan.threshold=1", "gan.ccgan.threshold"),
    ("fakes.n_labels=1", "fakes.n_labels"),
    ("fakes.n_per_label=0", "fakes.n_per_label"),
    ("adjust.enabled=maybe", "adjust.enabled"),
    ("student.methods=[nokd, hinton]", "student.methods"),
    ("student.methods=[blkd]", "student.methods"),
    ("student.methods=[nokd, cgankd+blkd]", "student.methods"),  # fine-tunes blkd: list it
    ("student.methods=[nokd, blkd, blkd]", "student.methods"),
    ("student.fakes=fakes.csv", "student.fakes"),
    ("student.tag=a/b", "student.tag"),
    ("kd.blkd.alpha=1.5", "param kd.blkd.alpha: must be in [0, 1]"),
    ("kd.vkd.temperature=0", "param kd.vkd.temperature: must be > 0"),
    ("kd.temperature=2", "now per distiller: kd.blkd.temperature, kd.fitnet.temperature, kd.vkd.temperature"),
    ("kd.hinton.alpha=1", "param kd.hinton: not a distiller with settings; known: blkd, fitnet, vkd"),
    ("vkd.views=0", "vkd.views"),
])
def test_bad_params_name_the_key(override, key):
    with pytest.raises(CgankdError) as err:
        load_config(ROOT / "params.yaml", [override])
    assert key in str(err.value)


def test_cli_errors_are_one_line_with_exit_code_2(capsys):
    assert main(["config", "-S", "filter.rho=2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "filter.rho" in err and err.startswith("cgankd: error:")


def test_missing_params_file(capsys, tmp_path):
    assert main(["config", "-p", str(tmp_path / "nope.yaml")]) == 2
    assert "params file not found" in capsys.readouterr().err


def test_per_task_defaults():
    cls, reg = load_config(ROOT / "params.yaml"), load_config(ROOT / "params.yaml", ["task=regression"])
    assert (cls.rho, cls.adjust_labels, cls.model_name) == (0.9, False, "cgankd-objects")
    assert (reg.rho, reg.adjust_labels, reg.model_name) == (0.7, True, "cgankd-rc")
    off = load_config(ROOT / "params.yaml", ["task=regression", "filter.enabled=false", "adjust.enabled=false",
                                             "tracking.model_name=mine"])
    assert (off.rho, off.adjust_labels, off.model_name) == (1.0, False, "mine")


def test_vkd_is_refused_for_regression():
    with pytest.raises(CgankdError, match="student.methods.*classification only"):
        load_config(ROOT / "params.yaml", ["task=regression", "student.methods=[nokd, vkd]"])
    cfg = load_config(ROOT / "params.yaml", ["task=regression", "student.methods=[nokd, blkd, cgankd+blkd]"])
    assert cfg.uses_fakes and not cfg.uses_vkd


def test_profile_lies_between_params_and_overrides(tmp_path):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "params.yaml").write_text("seed: 3\ngan: {iterations: 10, batch_size: 8}\n")
    (tmp_path / "profiles" / "big.yaml").write_text("gan: {iterations: 1000}\nstudent: {steps: 99}\n")
    cfg = load_config(tmp_path / "params.yaml", ["profile=big", "student.steps=7"], runtime=False)
    assert (cfg.profile, cfg.seed, cfg.gan.iterations, cfg.gan.batch_size, cfg.student.steps) == (
        "big", 3, 1000, 8, 7)  # a section of the profile merges key by key; -S wins
    assert cfg.flat()["profile"] == "big"  # every MLflow run logs it as a param
    (tmp_path / "params.yaml").write_text("profile: big\n")  # chosen in params.yaml (dvc exp run -S profile=big)
    assert load_config(tmp_path / "params.yaml", runtime=False).gan.iterations == 1000
    assert load_config(tmp_path / "params.yaml", ["profile=null"], runtime=False).gan.iterations == 800
    (tmp_path / "profiles" / "loop.yaml").write_text("profile: big\n")
    with pytest.raises(CgankdError, match="cannot name another profile"):
        load_config(tmp_path / "params.yaml", ["profile=loop"], runtime=False)


def test_the_gpu_profile_is_valid_and_published_scale():
    cfg = load_config(ROOT / "params.yaml", ["profile=gpu", "device=cpu"])
    assert cfg.gan.iterations >= 20000 and cfg.gan.batch_size == 256
    assert cfg.fakes.n_per_class >= 1000 and cfg.student.mode == "finetune" and cfg.student.fake_ratio == 2.0
    assert load_config(ROOT / "params.yaml", ["profile=gpu"], runtime=False).device == "cuda"


def test_the_cpu_effect_profile_is_the_measured_recipe():
    cfg = load_config(ROOT / "params.yaml", ["profile=cpu-effect"])  # docs/results.md, the effect curve
    assert (cfg.data.render.resolution, cfg.gan.d_steps, cfg.gan.iterations) == (16, 4, 8000)
    assert cfg.gan.max_minutes is not None and cfg.task == "classification" and cfg.device == "auto"


def test_version_names_cgankd_and_its_torch(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"cgankd {cgankd.__version__} (torch ") and "torchvision " in out


def test_each_stage_help_says_what_the_stage_does(capsys):
    from cgankd.pipeline.spec import STAGE_ORDER

    for stage in STAGE_ORDER:
        with pytest.raises(SystemExit):
            main([stage, "--help"])
        out = capsys.readouterr().out
        assert f"run the {stage} stage" not in out and "KEY is dotted" in out, stage
    with pytest.raises(SystemExit):
        main(["make-fakes", "--help"])
    assert "subsample with cDR-RS, filter with the teacher" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("override, words", [
    ("gan.itrations=5", "param gan.itrations: unknown key; did you mean gan.iterations?"),
    ("data.source=imagefoldr", "param data.source: 'imagefoldr': unknown; did you mean imagefolder?"),
    ("data.source=nosuch", "param data.source: 'nosuch': unknown; choose one of: auto, cifar10"),
    ("teacher.arch=resnet21", "param teacher.arch: 'resnet21': unknown; did you mean resnet"),
    ("student.arch=convnet_q", "param student.arch: 'convnet_q': unknown; did you mean convnet_"),
    ("data.resolution=33", "param data.resolution: must be null (the source's own) or one of 16, 32, 64, 128"),
])
def test_unknown_names_are_refused_when_the_config_is_read_with_the_closest_one(override, words, capsys):
    assert main(["config", "-S", override]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and words in err, err


@pytest.mark.parametrize("override, words", [
    ("gan.lr_g=0", "param gan.lr_g: must be > 0, got 0"),  # no range was checked for these before the schema
    ("serve.port=70000", "param serve.port: must be in [1, 65535], got 70000"),
    ("gan.betas=[0.5, 1.2]", "param gan.betas: must be in [0, 1), got 1.2"),
    ("gan.betas=[0.5]", "param gan.betas: must be two numbers"),
    ("extractor.arch=resnet21", "param extractor.arch: 'resnet21': unknown"),
    ("data.channels=2", "param data.channels: must be null (the source's own) or one of 1, 3, got 2"),
    ("precision=int8", "param precision: must be fp32, bf16, fp16 or auto, got 'int8'"),
    ("fakes.truncation=-1", "param fakes.truncation: must be > 0 or null (no truncation), got -1"),
    ("kd.fitnet.hint_layer=-1", "param kd.fitnet.hint_layer: must be >= 0 or null (the middle one), got -1"),
])
def test_every_declared_range_is_checked_when_the_config_is_read(override, words):
    with pytest.raises(CgankdError) as err:
        load_config(ROOT / "params.yaml", [override], runtime=False)  # no runtime checks: the schema alone
    assert words in str(err.value)


def test_the_committed_json_schema_is_current_and_params_and_profiles_follow_it():
    jsonschema = pytest.importorskip("jsonschema")
    import json

    import yaml

    from cgankd.config.json_schema import render

    assert (ROOT / "params.schema.json").read_text() == render(), "run `cgankd config --schema > params.schema.json`"
    assert (ROOT / "params.yaml").read_text().startswith("# yaml-language-server: $schema=params.schema.json\n")
    validator = jsonschema.Draft202012Validator(json.loads(render()))
    for path in [ROOT / "params.yaml", *sorted((ROOT / "profiles").glob("*.yaml"))]:
        assert not list(validator.iter_errors(yaml.safe_load(path.read_text()))), path.name
    bad = yaml.safe_load((ROOT / "params.yaml").read_text())
    bad["filter"]["rho"], bad["gan"]["ccgan"]["vicinity"], bad["gan"]["itrations"] = 1.5, "wide", 5
    assert len(list(validator.iter_errors(bad))) == 3  # what an editor underlines as you type
