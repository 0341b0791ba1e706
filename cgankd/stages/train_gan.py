"""train-gan: the class-conditional GAN (classification) or the CcGAN (regression) on the real
training set; resumes after a crash."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from cgankd import store
from cgankd.config import Config
from cgankd.data.preview import save_grid
from cgankd.gan.conditions import make_condition
from cgankd.gan.train import sample, train_gan
from cgankd.stages.common import prepared, setup, write_history
from cgankd.stages.registry import STAGES
from cgankd.tracking import NullTracker


@STAGES.register("train-gan")
def run(cfg: Config, tracker: NullTracker | None = None, stop_after: int | None = None) -> dict[str, Any]:
    tracker = tracker or NullTracker()
    rt = setup(cfg, 1)
    layout = store.Layout(cfg)
    data = prepared(cfg)
    meta, train = data.meta, data["train"]
    regression = meta.task == "regression"
    num_classes = None if regression else meta.num_classes
    labels = meta.scale(train.labels) if regression else train.labels
    tracker.log_params({f"gan.{k}": v for k, v in make_condition(cfg.gan, labels, num_classes).describe().items()})
    g, history = train_gan(cfg.gan, train.images, labels, num_classes, cfg.seed + 1,
                           layout.gan_checkpoint, log=lambda s, row: tracker.log_metrics(row, step=s),
                           stop_after=stop_after, runtime=rt)
    out = layout.gan.parent
    store.save_gan_generator(g, layout.gan, {"num_classes": num_classes, "task": meta.task,
                                             "resolution": meta.resolution, "channels": meta.channels,
                                             "label_range": meta.label_range, "gan": asdict(cfg.gan)})
    write_history(out / "history.csv", history)
    if regression:  # 10 rows across the label range, 12 samples each
        scaled = np.repeat(np.linspace(0.0, 1.0, 10), 12).astype(np.float32)
        imgs = sample(g, scaled, cfg.gan.z_dim, torch.Generator().manual_seed(0))
        shown = meta.unscale(scaled)
    else:
        shown = np.repeat(np.arange(meta.num_classes), 12)
        imgs = sample(g, shown, cfg.gan.z_dim, torch.Generator().manual_seed(0))
    grid = save_grid(out / "samples.png", imgs, shown, meta.task, meta.classes)
    tracker.log_artifact(grid, "plots")
    last = history[-1] if history else {}
    print(f"train-gan: {cfg.gan.iterations} iterations, last loss_d {last.get('loss_d', float('nan')):.3f} "
          f"loss_g {last.get('loss_g', float('nan')):.3f} -> {out}")
    return {"generator": str(layout.gan), "iterations": cfg.gan.iterations}
