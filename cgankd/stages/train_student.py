"""train-student: ``nokd`` on real data alone, ``cgankd`` on real + processed fakes.

Both use the same architecture, step budget and seed. ``student.mode=finetune`` starts the
cgankd student from the NOKD checkpoint with a low learning rate (the published recipe).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from cgankd.config import Config
from cgankd.data.prepared import Split
from cgankd.errors import CgankdError
from cgankd.io import write_json
from cgankd.models import count_params
from cgankd.stages.common import fit_metrics, load_model, new_model, prepared, save_model, setup, write_history
from cgankd.stages.registry import STAGES
from cgankd.tracking import NullTracker
from cgankd.train.loop import fit

METHODS = ("nokd", "cgankd")


def load_fakes(cfg: Config) -> Split:
    path = cfg.path("fakes", "fakes.npz")
    if not path.is_file():
        raise CgankdError(str(path), "fake set not found (run `cgankd make-fakes` first)")
    with np.load(path) as z:
        return Split(z["fake_images"], z["fake_labels"])


@STAGES.register("train-student")
def run(cfg: Config, tracker: NullTracker | None = None, method: str = "nokd") -> dict[str, Any]:
    if method not in METHODS:
        raise CgankdError(f"method {method!r}", f"unknown; choose one of {', '.join(METHODS)}")
    tracker = tracker or NullTracker()
    setup(cfg, 3)
    data = prepared(cfg)
    sc = cfg.student
    fakes = load_fakes(cfg) if method == "cgankd" else None
    steps, lr = sc.steps, sc.lr
    if method == "cgankd" and sc.mode == "finetune":
        model = load_model(cfg.path("students", "nokd", "model.pt"))
        model.train()
        steps, lr = sc.finetune_steps, sc.finetune_lr
    else:
        model = new_model(sc.arch, data, sc.width)
    tracker.set_tags({"cgankd.method": method})
    res = fit(model, data["train"], data["val"], data.meta, sc, cfg.seed + 3, f"train-student[{method}]",
              fakes=fakes, fake_ratio=sc.fake_ratio if fakes is not None else 0.0, steps=steps, lr=lr,
              log=lambda s, row: tracker.log_metrics(row, step=s))
    out = cfg.path("students", method)
    save_model(res.best, out / "model.pt", {"best_step": res.best_step, "method": method})
    write_history(out / "history.csv", res.history)
    m: dict[str, Any] = {"params": count_params(model), "best_step": res.best_step,
                         "n_fakes": 0 if fakes is None else len(fakes)}
    m.update(fit_metrics(res, data))
    write_json(cfg.path("metrics", f"student_{method}.json"), m)
    tracker.log_metrics(m)
    print(f"train-student[{method}]:", json.dumps(m))
    return m
