"""One training loop for teachers and students: SGD + cosine schedule, fixed step budget.

With fakes, every batch holds ``round(B / (1 + fake_ratio))`` real images and the rest fakes;
the same augmentation applies to both. The model with the best validation metric is kept
(selection never looks at the test split) and the last one is reported too. The loss comes from a
distiller (``cgankd.kd``; NOKD when none is given): every term is logged on its own.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from cgankd.config import TrainCfg
from cgankd.data.prepared import Meta, Split
from cgankd.kd import DISTILLERS, Distiller
from cgankd.kd.base import KDContext
from cgankd.progress import Progress
from cgankd.train.augment import random_crop_flip
from cgankd.train.data import EpochSampler, targets, to_float
from cgankd.train.evaluate import better, metrics, predict


@dataclass
class FitResult:
    best: nn.Module
    last: nn.Module
    best_step: int
    history: list[dict[str, float]] = field(default_factory=list)


def fit(model: nn.Module, train: Split, val: Split, meta: Meta, cfg: TrainCfg, seed: int,
        desc: str, fakes: Split | None = None, fake_ratio: float = 0.0,
        steps: int | None = None, lr: float | None = None,
        log: Callable[[int, dict[str, float]], None] | None = None,
        distiller: Distiller | None = None) -> FitResult:
    """Train ``model`` (the distiller's student when a distiller is given)."""
    if distiller is None:
        distiller = DISTILLERS.get("nokd")(model, KDContext(meta.task, (meta.channels, meta.resolution,
                                                                          meta.resolution)))
    model = distiller.student
    steps = steps or cfg.steps
    lr = lr or cfg.lr
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    x_real, y_real = to_float(train.images), targets(train.labels, meta)
    use_fakes = fakes is not None and len(fakes) > 0 and fake_ratio > 0
    n_real = cfg.batch_size if not use_fakes else max(1, round(cfg.batch_size / (1 + fake_ratio)))
    real_sampler = EpochSampler(len(y_real), gen)
    if use_fakes:
        x_fake, y_fake = to_float(fakes.images), targets(fakes.labels, meta)
        fake_sampler = EpochSampler(len(y_fake), gen)
    params = list(distiller.trainable())
    opt = torch.optim.SGD(params, lr=lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay, nesterov=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    flip = cfg.augment and meta.task == "classification"  # a mirrored object changes its yaw
    pad = max(1, meta.resolution // 8) if cfg.augment else 0
    best, best_val, best_step, history = copy.deepcopy(model), None, 0, []
    distiller.train()
    running: dict[str, float] = {}
    with Progress(steps, desc) as bar:
        for step in range(1, steps + 1):
            i = real_sampler.take(n_real)
            xb, yb = x_real[i], y_real[i]
            if use_fakes:
                j = fake_sampler.take(cfg.batch_size - n_real)
                xb, yb = torch.cat([xb, x_fake[j]]), torch.cat([yb, y_fake[j]])
            xb = random_crop_flip(xb, pad, flip, gen) if cfg.augment else xb
            _, terms = distiller.forward_train(xb.to(device), yb.to(device))
            loss = sum(terms.values())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            sched.step()
            values = {"loss": loss.item(), **{k: v.item() for k, v in terms.items()}}
            running = {k: 0.9 * running[k] + 0.1 * v if step > 1 else v for k, v in values.items()}
            bar.update(1, loss=running["loss"])
            if step % cfg.eval_every == 0 or step == steps:
                row = {"step": step, **{f"train_{k}": v for k, v in running.items()}}
                row.update(metrics(predict(model, val.images), val.labels, meta, "val"))
                history.append(row)
                if log:
                    log(step, row)
                key = "val_acc" if meta.task == "classification" else "val_mae"
                if better(row[key], best_val, meta.task):
                    best_val, best_step = row[key], step
                    best = copy.deepcopy(model)
                distiller.train()
    best.eval()
    model.eval()
    return FitResult(best=best, last=model, best_step=best_step, history=history)


def set_threads(n: int | None) -> None:
    if n:
        torch.set_num_threads(n)


def seed_everything(seed: int) -> None:
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
