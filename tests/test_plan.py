"""``cgankd plan``: a dry run of every paper profile on files of the authors' layouts (no GPU here, no
training, nothing written), and a plan that cannot fit the device fails in one line."""

from __future__ import annotations

import pytest
from conftest import ROOT
from kit import authors_h5, make_cifar

from cgankd.cli import main

DATA = {"cifar100": None, "imagenet100": "imagenet100", "utkface": "utkface", "steeringangle": "utkface"}


def _root(tmp_path, dataset: str) -> str:
    if DATA[dataset] is None:
        return str(make_cifar(tmp_path / "data", hundred=True))
    return str(authors_h5(tmp_path / f"{dataset}.h5", DATA[dataset]))


def _plan(tmp_path, dataset: str, *extra: str) -> int:
    out = tmp_path / "out"
    return main(["plan", "-p", str(ROOT / "params.yaml"), "-S", f"profile=paper-{dataset}", "-S",
                 f"data.root={_root(tmp_path, dataset)}", "-S", f"out_dir={out}",
                 "-S", "data.n_val_per_class=1", *extra])  # the fixtures hold 4 images a class


@pytest.mark.parametrize("dataset", DATA)
def test_every_paper_profile_plans(tmp_path, capsys, dataset):
    assert _plan(tmp_path, dataset) == 0
    text = capsys.readouterr().out
    assert f"profile paper-{dataset}, device cuda, bf16, compile default" in text
    for stage in ("prepare", "train-teacher", "train-extractor", "train-gan", "make-fakes", "train-student[nokd]",
                  "train-student[cgankd]", "export", "evaluate", "register"):
        assert f"\n{stage} " in text, stage
    if dataset == "cifar100":
        assert "38,000 iterations x 4 D steps at 512, biggan_pytorch width 64/64, z 128" in text
        assert "240 epochs = 240 steps of 128, wrn_40_2" in text  # 40 images: one step an epoch
        assert "240 epochs = 93,840 steps of 128, MobileNetV2" in text  # + 50,000 fakes: 391 steps an epoch
    if dataset == "utkface":  # the authors' SAGAN, and their autoencoder with a C x H x W code (16 px here)
        assert "20,000 iterations x 4 D steps at 512, sagan width 64/64, z 256" in text
        assert "200 epochs = 200 steps of 128, sparse autoencoder (paper, 768-d)" in text
    assert "GiB" in text and "est. time: no GPU speed measured" in text
    assert not (tmp_path / "out").exists()  # nothing written


def test_a_plan_over_the_devices_memory_fails_in_one_line(tmp_path, capsys):
    assert _plan(tmp_path, "utkface", "--device-memory", "0.05") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("cgankd: error: plan train-") and "which has 0.05 GiB" in err, err
