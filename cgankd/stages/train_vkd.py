"""train-vkd: VKD's virtual knowledge generator, fitted to the teacher's softened outputs on
``vkd.views`` randomly augmented copies of the real training set (classification only)."""

from __future__ import annotations

import json
from typing import Any

import torch

from cgankd import store
from cgankd.base.errors import CgankdError
from cgankd.base.io import write_json
from cgankd.base.progress import Progress
from cgankd.base.tracker import NullTracker
from cgankd.config import Config
from cgankd.kd.vkd_generator import VKDTrainCfg, match_metrics, train_generator
from cgankd.models import count_params
from cgankd.stages.common import at, prepared, setup, write_history
from cgankd.task import task_of
from cgankd.train.augment import random_crop_flip
from cgankd.train.data import targets, to_float


@torch.no_grad()
def teacher_views(teacher: torch.nn.Module, images: torch.Tensor, views: int, pad: int,
                  gen: torch.Generator, batch: int = 256) -> torch.Tensor:
    """Teacher logits on ``views`` augmented copies (the first un-augmented): (views * N) x C."""
    out = []
    for v in range(views):
        for i in range(0, len(images), batch):
            x = images[i:i + batch]
            out.append(teacher(random_crop_flip(x, pad, True, gen) if v else x))
    return torch.cat(out)


def run(cfg: Config, tracker: NullTracker | None = None) -> dict[str, Any]:
    tracker = tracker or NullTracker()
    dev = setup(cfg, 7).device
    data = prepared(cfg)
    meta = data.meta
    if not task_of(meta.task).categorical:
        raise CgankdError(f"task {meta.task!r}", "VKD applies to classification only")
    teacher = store.load(at(cfg, "teacher"), "image_model", dev, "train-teacher")
    vc = cfg.vkd
    gen = torch.Generator().manual_seed(cfg.seed + 7)
    x, y = to_float(data["train"].images).to(dev), targets(data["train"].labels, meta).to(dev)
    logits = teacher_views(teacher, x, vc.views, max(1, meta.resolution // 8), gen)
    ys = y.repeat(vc.views)
    tc = VKDTrainCfg(cfg.kd["vkd"].temperature, vc.steps, vc.batch_size, vc.lr, vc.kl_weight, vc.z_dim)
    with Progress(vc.steps, "train-vkd") as bar:
        def on_step(step: int, row: dict[str, float]) -> None:  # every steps // 20 (one read of the losses)
            bar.update(step - bar.n, kl=row["loss_kl"])
            tracker.log_metrics({k: v for k, v in row.items() if k != "step"}, step=step)

        v, history = train_generator(logits, ys, meta.num_classes, tc, cfg.seed + 7, on_step)
    store.save_vkd_generator(v, at(cfg, "vkd"), {"temperature": cfg.kd["vkd"].temperature})
    write_history(at(cfg, "vkd_history"), history)
    m: dict[str, Any] = {"params": count_params(v), "n_targets": len(ys)}
    m.update(match_metrics(v, logits, ys, meta.num_classes, cfg.kd["vkd"].temperature, cfg.seed + 7))
    write_json(at(cfg, "vkd_metrics"), m)
    tracker.log_metrics(m)
    print("train-vkd:", json.dumps(m))
    return m
