"""docs/paper-recipes.md and profiles/paper-<dataset>.yaml hold the same published values: every
backticked cell of a row with a key is the profile's value, and every value a profile sets has its
row. Each paper profile reads as a valid config (on the CPU, with a data root given)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, SHRINK
from kit import authors_h5, make_cifar
from kit.shim import shim

from cgankd.config import load_config
from cgankd.store import files

COLUMNS = {"CIFAR-100": "cifar100", "ImageNet-100": "imagenet100", "UTKFace": "utkface",
           "Steering Angle": "steeringangle"}


def table() -> dict[str, dict[str, object]]:
    """{dataset: {key: value}} from the table's rows that name a key and give a value in backticks."""
    lines = [ln for ln in (ROOT / "docs" / "paper-recipes.md").read_text().splitlines() if ln.startswith("| ")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    out: dict[str, dict[str, object]] = {v: {} for v in COLUMNS.values()}
    for line in lines[1:]:
        cells = dict(zip(head, (c.strip() for c in line.strip().strip("|").split("|")), strict=True))
        key = cells["our key"]
        if not (key.startswith("`") and key.endswith("`")):
            continue
        for column, dataset in COLUMNS.items():
            cell = cells[column]
            if cell.startswith("`") and cell.endswith("`") and cell.count("`") == 2:
                out[dataset][key.strip("`")] = yaml.safe_load(cell.strip("`"))
    return out


def flat(tree: dict, prefix: str = "") -> dict[str, object]:
    items: dict[str, object] = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            items.update(flat(v, f"{prefix}{k}."))
        else:
            items[f"{prefix}{k}"] = v
    return items


@pytest.mark.parametrize("dataset", COLUMNS.values())
def test_each_paper_profile_is_the_table(dataset):
    profile = flat(yaml.safe_load((ROOT / "profiles" / f"paper-{dataset}.yaml").read_text()))
    rows = table()[dataset]
    assert profile == rows, {k: (profile.get(k), rows.get(k)) for k in profile.keys() | rows.keys()
                             if profile.get(k) != rows.get(k)}


@pytest.mark.parametrize("dataset", COLUMNS.values())
def test_each_paper_profile_reads_as_a_config(dataset, tmp_path):
    cfg = load_config(ROOT / "params.yaml", [f"profile=paper-{dataset}", f"data.root={tmp_path}", "device=cpu",
                                             "compile=false", "precision=fp32"])
    tree = cfg.to_dict()
    profile = flat(yaml.safe_load((ROOT / "profiles" / f"paper-{dataset}.yaml").read_text()))
    for key, value in profile.items():
        if key not in ("device", "compile", "precision"):
            node = tree
            for part in key.split("."):
                node = node[part]
            assert node == value, key


def test_the_table_cites_files_of_the_authors_repository():
    text = (ROOT / "docs" / "paper-recipes.md").read_text()
    assert "UBCDingXin/cGAN-KD" in text and "8fcb117" in text
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith(("| setting", "|---")):
            where = line.strip().strip("|").split("|")[-1]
            assert where.strip(), line
    assert sorted(p.stem for p in Path(ROOT / "profiles").glob("paper-*.yaml")) == \
        sorted(f"paper-{d}" for d in COLUMNS.values())


# what shrinks a paper profile to a CPU test; its paper-mode processing stays: epochs and step decay,
# fine-tuning from NOKD's last checkpoint, M = the max raised (per label for regression), the filter's
# burn-in drawn through cDR-RS, FitNet's soft term, the CcGAN settings
PAPER_SHRINK = ["device=cpu", "precision=fp32", "compile=false", "data.resolution=32", "data.n_per_class=null",
                "data.n_val_per_class=1", "teacher.epochs=1", "teacher.width=0.25",  # (the DenseNets' too)
                "student.epochs=1", "extractor.steps=20", "extractor.epochs=1", "extractor.width=0.25",
                "gan.batch_size=16", "gan.iterations=4", "gan.g_ch=8", "gan.d_ch=8", "gan.ccgan.embed_epochs=1",
                "gan.ccgan.y2h_epochs=2", "gan.score_every=4", "gan.ema_start=2",
                "subsample.dre_steps=20", "subsample.dre_epochs=2", "subsample.n_fake_train=200",
                "subsample.m_burn_in=2", "quality.n_fakes=100"]


@pytest.mark.slow
@pytest.mark.parametrize("dataset", COLUMNS.values())
def test_each_paper_profile_runs_end_to_end_shrunk(tmp_path, dataset):
    root = (make_cifar(tmp_path / "data", hundred=True) if dataset == "cifar100" else
            authors_h5(tmp_path / "d.h5", "imagenet100" if dataset == "imagenet100" else "utkface"))  # Steering's too
    out = tmp_path / "out"
    args = [str(shim()), "run", "-p", str(ROOT / "params.yaml")]  # the fork server's cgankd (kit/shim.py)
    for s in (*SHRINK, f"profile=paper-{dataset}", f"data.root={root}", f"out_dir={out}", *PAPER_SHRINK):
        args += ["-S", s]
    res = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "CGANKD_TRACKING": "off"},
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    task_metric = "acc" if dataset in ("cifar100", "imagenet100") else "mae"
    metrics = json.loads((out / "metrics.json").read_text())
    assert f"nokd_test_{task_metric}" in metrics and f"cgankd_test_{task_metric}" in metrics
    assert (out / "students" / "nokd" / "last.pt").is_file()
    gan_meta, _ = files.read(out / "gan" / "generator.pt", "gan_generator")  # UTKFace: the authors' SAGAN, trained
    assert gan_meta["gan"]["arch"] == {"cifar100": "biggan_pytorch", "imagenet100": "biggan"}.get(dataset, "sagan")
    # CIFAR-100's and ImageNet-100's fakes are filtered and relabelled by a DenseNet of their own, not the teacher
    assert (out / "metrics" / "filter_net.json").is_file() is (dataset in ("cifar100", "imagenet100"))
    assert "fine-tuned from NOKD's last checkpoint for 1 epochs over real + fakes" in (out / "report.md").read_text()
