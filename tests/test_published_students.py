"""The published student recipe's pieces: step decay at fractions of the budget, a budget in epochs
(real + fakes), and every cgankd+X fine-tuned from NOKD's last checkpoint (student.finetune_from)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import shrunk

from cgankd.base.errors import CgankdError
from cgankd.config import TrainCfg
from cgankd.pipeline.spec import student_deps
from cgankd.stages import prepare, train_student, train_teacher
from cgankd.store import files
from cgankd.train import loop


def test_step_decay_at_the_authors_epochs():
    lam = loop.step_decay(TrainCfg(schedule="step"), 240)  # 240 epochs, decays at 150 / 180 / 210
    assert [lam(s) for s in (0, 149, 150, 179, 180, 209, 210, 239)] == \
        pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    assert loop.cosine(TrainCfg(), 100)(50) == pytest.approx(0.5)


def test_a_budget_in_epochs_passes_over_reals_and_fakes(monkeypatch):
    from cgankd.data.prepared import Meta, Prepared, Split
    from cgankd.models import build_model

    monkeypatch.setattr("cgankd.train.loop.metrics", lambda *a, **k: {"val_acc": 1.0})
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (30, 3, 8, 8), dtype=np.uint8), np.arange(30) % 3
    fx, fy = rng.integers(0, 256, (50, 3, 8, 8), dtype=np.uint8), np.arange(50) % 3
    meta = Meta(task="classification", source="t", channels=3, resolution=8, classes=list("abc"))
    lrs = []
    res = loop.fit(build_model("convnet_xs", 3, 3, 8), Prepared(meta, {"train": Split(x, y), "val": Split(x, y)}),
                   TrainCfg(epochs=3, batch_size=16, eval_every=10**6, schedule="step", lr=0.1), seed=0, desc="t",
                   fakes=Split(fx, fy), fake_ratio=1.0, steps=999,
                   log=lambda s, row: lrs.append(s))
    assert lrs == [3 * 5]  # ceil(80 / 16) = 5 steps an epoch; `steps` gives way to epochs
    assert res.history[-1]["step"] == 15


def test_cgankd_x_fine_tunes_from_nokds_last_checkpoint(tmp_path, monkeypatch):
    out = tmp_path / "out"
    fakes = tmp_path / "fakes.npz"
    cfg = shrunk(out, "student.methods=[nokd,cgankd+blkd]", "student.finetune_from=nokd-last",
                 f"student.fakes={fakes}", "student.schedule=step")
    assert "student_last:nokd" in student_deps(cfg, "cgankd+blkd")
    prepare.run(cfg)
    train_teacher.run(cfg)
    meta = train_student.prepared(cfg).meta
    np.savez(fakes, fake_images=np.zeros((20, meta.channels, meta.resolution, meta.resolution), np.uint8),
             fake_labels=np.arange(20) % meta.num_classes)
    with pytest.raises(CgankdError, match="train-student --method nokd"):
        train_student.run(cfg, method="cgankd+blkd")  # no NOKD student yet: one line naming what to run
    train_student.run(cfg, method="nokd")
    meta, last = files.read(out / "students" / "nokd" / "last.pt", "image_model")
    assert meta["checkpoint"] == "last"
    started = {}
    real_fit = train_student.fit

    def fit(model, *args, **kwargs):
        started.update({k: v.clone() for k, v in model.state_dict().items()})
        return real_fit(model, *args, **kwargs)

    monkeypatch.setattr(train_student, "fit", fit)
    train_student.run(cfg, method="cgankd+blkd")
    assert started.keys() == last.keys() and all(torch.equal(started[k], last[k]) for k in last)
    assert (out / "students" / "cgankd+blkd" / "last.pt").is_file()
