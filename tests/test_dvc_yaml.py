"""dvc.yaml is generated (cgankd/pipeline/dvc_yaml.py): the committed file is current, and every stage lists
the params it reads, found by running each stage with a Config that records every field read."""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager

import pytest
import yaml
from conftest import ROOT, shrunk

from cgankd.cli import main
from cgankd.config import load_config
from cgankd.pipeline import dvc_yaml
from cgankd.pipeline.spec import stage, stage_calls, stage_label

PINNED = {"out_dir"}  # every command pins it (-S out_dir=artifacts)


def test_the_committed_dvc_yaml_is_current(capsys):
    assert (ROOT / "dvc.yaml").read_text() == dvc_yaml.render(load_config(ROOT / "params.yaml", runtime=False)), \
        "dvc.yaml is stale: run `cgankd dvc-yaml`"
    assert main(["dvc-yaml", "-p", str(ROOT / "params.yaml"), "-o", str(ROOT / "dvc.yaml"), "--check"]) == 0


def test_every_param_dvc_yaml_lists_is_in_params_yaml():
    """DVC reads its params from the file itself, not from the validated Config: a key that only
    has a default in cgankd/config/ fails `dvc repro` ("Parameters ... are missing from 'params.yaml'")."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name, entry in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items():
        for key in entry.get("params", []):
            node = raw
            for part in key.split("."):
                assert isinstance(node, dict) and part in node, f"{name}: {key} is not in params.yaml"
                node = node[part]


def test_student_stages_follow_student_methods(tmp_path):
    cfg = load_config(ROOT / "params.yaml", ["student.methods=[nokd, blkd, cgankd+blkd, vkd]"], runtime=False)
    stages = yaml.safe_load(dvc_yaml.render(cfg))["stages"]
    assert [s for s in stages if s.startswith("train-student")] == [
        "train-student-nokd", "train-student-blkd", "train-student-vkd", "train-student-cgankd-blkd"]
    fine = stages["train-student-cgankd-blkd"]
    assert "artifacts/students/blkd/model.pt" in fine["deps"] and "artifacts/fakes/fakes.npz" in fine["deps"]
    assert fine["cmd"] == "cgankd train-student --method cgankd+blkd -S out_dir=artifacts"
    assert "artifacts/fakes/fakes.npz" not in stages["train-student-nokd"]["deps"]
    assert "artifacts/vkd/generator.pt" in stages["train-student-vkd"]["deps"] and "train-vkd" in stages
    assert "artifacts/students/vkd" in stages["export"]["deps"]  # a folder: a skipped student has no model.pt
    assert "make-fakes" not in yaml.safe_load(dvc_yaml.render(load_config(
        ROOT / "params.yaml", ["student.methods=[nokd, blkd]"], runtime=False)))["stages"]
    out = tmp_path / "dvc.yaml"
    assert main(["dvc-yaml", "-p", str(ROOT / "params.yaml"), "-o", str(out), "--check"]) == 2  # missing
    assert main(["dvc-yaml", "-p", str(ROOT / "params.yaml"), "-o", str(out)]) == 0 and out.is_file()


def test_prepare_depends_on_the_data_it_reads():
    """The embedded data are rendered from code and params; data on disk is a dependency itself."""
    embedded = yaml.safe_load(dvc_yaml.render(load_config(ROOT / "params.yaml", runtime=False)))["stages"]
    mine = load_config(ROOT / "params.yaml", ["data.source=imagefolder", "data.root=/data/parts"], runtime=False)
    deps = yaml.safe_load(dvc_yaml.render(mine))["stages"]["prepare"]["deps"]
    assert "/data/parts" in deps and sorted(set(deps) - {"/data/parts"}) == sorted(embedded["prepare"]["deps"])


def test_code_deps_come_from_the_imports():
    deps = dvc_yaml.code_deps("cgankd.stages.train_gan")
    assert {"cgankd/gan", "cgankd/stages/train_gan.py", "cgankd/config/sections.py", "cgankd/quality",
            "cgankd/task.py", "cgankd/config/layout.py"} <= set(deps)
    assert "cgankd/stages/make_fakes.py" not in deps  # no stage imports another
    assert not {"cgankd/pipeline/spec.py", "cgankd/base/tracker.py", "cgankd/config/json_schema.py"} & set(deps)
    assert "cgankd/fakes" in dvc_yaml.code_deps("cgankd.stages.make_fakes")


def test_a_stage_run_by_dvc_stops_in_one_line_when_dvc_yaml_was_made_for_other_params(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DVC_STAGE", "export")
    monkeypatch.setenv("DVC_ROOT", str(ROOT))  # the committed dvc.yaml, made for params.yaml
    params = ["-p", str(ROOT / "params.yaml"), "-S", f"out_dir={tmp_path}"]
    assert main(["export", *params, "-S", "student.methods=[nokd,cgankd,blkd]"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no stage train-student-blkd" in err and "cgankd repro" in err
    assert main(["export", *params, "-S", "data.source=imagefolder", "-S", f"data.root={tmp_path}"]) == 2
    assert "its stage prepare differs" in capsys.readouterr().err
    # the params it was made for pass the check: export then stops on its missing input instead
    assert main(["export", *params]) == 2
    assert "dvc.yaml" not in capsys.readouterr().err


def test_code_deps_leave_out_logging_and_the_models_a_stage_does_not_load():
    teacher = set(dvc_yaml.code_deps("cgankd.stages.train_teacher"))
    assert {"cgankd/models", "cgankd/train", "cgankd/store/kinds.py"} <= teacher
    assert not teacher & {"cgankd/gan", "cgankd/subsample", "cgankd/features", "cgankd/ops/tracking.py",
                          "cgankd/base/progress.py", "cgankd/base/faults.py", "cgankd/base/tracker.py"}
    # the fake set loads the generator and the extractor: their rebuilding code counts
    assert {"cgankd/gan", "cgankd/features"} <= set(dvc_yaml.code_deps("cgankd.stages.make_fakes"))
    # register's output is what it tells the registry: its tracking code counts
    tracked = set(dvc_yaml.code_deps("cgankd.stages.register", True))
    assert {"cgankd/ops/tracking.py", "cgankd/ops/model_registry.py", "cgankd/ops/registry_lock.py"} <= tracked
    assert "cgankd/ops/tracking.py" not in dvc_yaml.code_deps("cgankd.stages.register")


def sections(value: object) -> bool:
    return isinstance(value, dict) and bool(value) and all(dataclasses.is_dataclass(v) for v in value.values())


@contextmanager
def recording(cfg):
    """Yields a set that fills with the dotted keys of every config field read."""
    paths, classes = {}, set()

    def walk(obj, prefix):
        paths[id(obj)] = prefix
        classes.add(type(obj))
        for f in dataclasses.fields(obj):
            v = getattr(obj, f.name)
            if dataclasses.is_dataclass(v):
                walk(v, f"{prefix}{f.name}.")
            elif sections(v):  # kd: a section per distiller
                for name, section in v.items():
                    walk(section, f"{prefix}{f.name}.{name}.")

    walk(cfg, "")
    seen: set[str] = set()
    fields = {cls: {f.name for f in dataclasses.fields(cls)} for cls in classes}

    def getattribute(self, name):
        value = object.__getattribute__(self, name)
        prefix = paths.get(id(self))
        if prefix is not None and name in fields.get(type(self), ()) and not dataclasses.is_dataclass(value) \
                and not sections(value):
            seen.add(prefix + name)
        return value

    saved = {cls: cls.__dict__.get("__getattribute__") for cls in classes}
    for cls in classes:
        cls.__getattribute__ = getattribute
    try:
        yield seen
    finally:
        for cls, old in saved.items():
            if old is None:
                del cls.__getattribute__
            else:
                cls.__getattribute__ = old


def covered(key: str, params: list[str]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in params)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_every_stage_lists_the_params_it_reads(tmp_path, task, monkeypatch):
    monkeypatch.setenv("CGANKD_TRACKING", "off")
    methods = "[nokd, blkd, vkd, cgankd]" if task == "classification" else "[nokd, blkd, cgankd]"
    judge = ["filter.net=resnet8"] if task == "classification" else []  # train-filter-net too
    cfg = shrunk(tmp_path, f"task={task}", f"student.methods={methods}", "vkd.steps=10", *judge)
    specs = dvc_yaml.stage_specs(cfg)
    missing = {}
    for name, kwargs in stage_calls(cfg):
        if name == "register":
            continue  # needs the registry (tracking off here); its params: test_e2e_dvc's repro
        with recording(cfg) as seen:
            stage(name).run(cfg, **kwargs)
        spec = specs[dvc_yaml.stage_name(name, kwargs.get("method"))]
        lost = sorted(k for k in seen - PINNED if not covered(k, spec["params"]))
        if lost:
            missing[stage_label(name, kwargs)] = lost
    assert not missing, f"params read but not listed in dvc.yaml: {missing}"
