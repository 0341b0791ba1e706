"""`cgankd ablate` end to end on the embedded classification data (shrunken): every variant
over two seeds, an MLflow parent with a child per (seed, variant), the markdown table, resume."""

import json

import pytest
import yaml
from conftest import shrunk

from cgankd.base.errors import CgankdError
from cgankd.sweeps.ablation import VARIANTS, run_ablation


@pytest.mark.slow
def test_ablation_runs_every_variant_and_resumes(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(shrunk(tmp_path / "unused").to_dict(), sort_keys=False))
    work = tmp_path / "abl"
    res = run_ablation(params, [], [0, 1], list(VARIANTS), work)
    assert len(res["rows"]) == 2 * len(VARIANTS) and len(res["baselines"]) == 2
    by = {(r["seed"], r["variant"]): r for r in res["rows"]}
    assert by[(0, "none")]["fakes"]["acceptance_rate"] == 1.0
    assert by[(0, "subsample")]["fakes"]["acceptance_rate"] < 1.0
    for r in res["rows"]:
        assert 0 <= r["student"]["test_acc"] <= 100 and r["fakes"]["quality_final_fid"] >= 0
    md = (work / "ablation_objects.md").read_text()
    assert all(f"| {v} |" in md for v in VARIANTS) and "| NOKD (no fakes) |" in md
    saved = json.loads((work / "ablation_objects.json").read_text())
    assert len(saved["rows"]) == 2 * len(VARIANTS)

    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    exp = client.get_experiment_by_name("cgankd")
    children = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{res['parent_run_id']}'")
    names = {r.info.run_name for r in children}
    assert {f"seed{s}/{v}" for s in (0, 1) for v in VARIANTS} <= names
    child = next(r for r in children if r.info.run_name == "seed0/subsample+filter")
    assert "quality_raw_fid" in child.data.metrics and "quality_subsampled_filtered_fid" in child.data.metrics
    assert "delta_test_acc_vs_nokd" in child.data.metrics

    # resume: nothing left to do; a variant re-run from scratch reproduces its numbers
    again = run_ablation(params, [], [0, 1], list(VARIANTS), work, reuse=True, resume=True)
    assert again["rows"] == saved["rows"]
    fresh = run_ablation(params, [], [0], ["subsample+filter"], tmp_path / "abl2")
    def model_metrics(m: dict) -> dict:
        return {k: v for k, v in m.items() if k != "train_seconds"}  # wall-clock time is not reproducible

    assert model_metrics(fresh["rows"][0]["student"]) == model_metrics(by[(0, "subsample+filter")]["student"])


def test_unknown_variant_is_one_line_error(tmp_path):
    with pytest.raises(CgankdError, match="variant 'sharpen'"):
        run_ablation(None, [], [0], ["sharpen"], tmp_path)


def test_extra_variants_start_with_every_step_off():
    from cgankd.sweeps.ablation import OFF, parse_extra

    got = parse_extra(['few="fakes.n_per_class=8 student.fake_ratio=1"'])
    assert got == {"few": {**OFF, "fakes.n_per_class": "8", "student.fake_ratio": "1"}}
    with pytest.raises(CgankdError, match="extra variant"):
        parse_extra(["few=fakes.n_per_class"])
