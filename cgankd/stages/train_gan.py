"""train-gan: the class-conditional GAN on the real training set; resumes after a crash."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from cgankd.config import Config
from cgankd.data.preview import save_grid
from cgankd.errors import CgankdError
from cgankd.gan.train import sample, train_gan
from cgankd.io import atomic_path
from cgankd.stages.common import prepared, setup, write_history
from cgankd.stages.registry import STAGES
from cgankd.tracking import NullTracker


def checkpoint_path(cfg: Config):
    return cfg.path(".checkpoints", "gan.pt")


@STAGES.register("train-gan")
def run(cfg: Config, tracker: NullTracker | None = None, stop_after: int | None = None) -> dict[str, Any]:
    tracker = tracker or NullTracker()
    setup(cfg, 1)
    data = prepared(cfg)
    if data.meta.task != "classification":
        raise CgankdError("task=regression", "the continuous CcGAN is not built yet (issue 4); "
                                             "train-gan supports classification only")
    train = data["train"]
    g, history = train_gan(cfg.gan, train.images, train.labels, data.meta.num_classes, cfg.seed + 1,
                           checkpoint_path(cfg), log=lambda s, row: tracker.log_metrics(row, step=s),
                           stop_after=stop_after)
    out = cfg.path("gan")
    with atomic_path(out / "generator.pt") as tmp:
        torch.save({"state_dict": g.state_dict(), "num_classes": data.meta.num_classes,
                    "resolution": data.meta.resolution, "channels": data.meta.channels,
                    "gan": cfg.gan.__dict__}, tmp)
    write_history(out / "history.csv", history)
    labels = np.repeat(np.arange(data.meta.num_classes), 12)
    imgs = sample(g, labels, cfg.gan.z_dim, torch.Generator().manual_seed(0))
    grid = save_grid(out / "samples.png", imgs, labels, "classification", data.meta.classes)
    tracker.log_artifact(grid, "plots")
    last = history[-1] if history else {}
    print(f"train-gan: {cfg.gan.iterations} iterations, last loss_d {last.get('loss_d', float('nan')):.3f} "
          f"loss_g {last.get('loss_g', float('nan')):.3f} -> {out}")
    return {"generator": str(out / "generator.pt"), "iterations": cfg.gan.iterations}
