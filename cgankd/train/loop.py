"""One training loop for teachers and students: SGD, a cosine or step-decay schedule, a budget in
steps or in epochs (an epoch: one pass over the real images plus the fakes, the published recipes'
unit).

With fakes, every batch holds ``round(B / (1 + fake_ratio))`` real images and the rest fakes;
the same augmentation applies to both. The model with the best validation metric is kept
(selection never looks at the test split) and the last one is reported too. The loss comes from a
distiller (``cgankd.kd``; NOKD when none is given): every term is logged on its own.

The data lives on the model's device and random numbers are drawn there; the loss terms stay on
the device and are read in one transfer at each validation check and every ``READ_EVERY`` steps
for the progress bar, so no step waits for the GPU. ``runtime`` adds autocast and compile.

Under ``torchrun`` the distiller runs in DistributedDataParallel and each rank trains on its share of
the same global batch (``cgankd.compute.distributed``); every rank validates the same synchronised model.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from cgankd.base.errors import CgankdError
from cgankd.base.progress import Progress
from cgankd.compute import distributed
from cgankd.compute.device import Runtime
from cgankd.config import TrainCfg
from cgankd.data.prepared import Prepared, Split
from cgankd.kd import DISTILLERS, Distiller
from cgankd.kd.base import KDContext
from cgankd.task import task_of
from cgankd.train.augment import random_crop_flip, random_resized_crop
from cgankd.train.data import EpochSampler, targets, to_float
from cgankd.train.evaluate import better, metrics, predict

READ_EVERY = 50  # steps between reads of the running loss for the progress bar


def cosine(cfg: TrainCfg, steps: int) -> Callable[[int], float]:
    return lambda s: 0.5 * (1 + math.cos(math.pi * s / steps))


def step_factor(decay_at: list[float], steps: int, rate: float = 0.1) -> Callable[[int], float]:
    """The lr's multiplier at step s: x ``rate`` at each fraction of ``steps`` in ``decay_at``."""
    marks = [round(f * steps) for f in decay_at]
    return lambda s: rate ** sum(s >= m for m in marks)


def step_decay(cfg: TrainCfg, steps: int) -> Callable[[int], float]:
    """lr x decay_rate at each fraction of the budget in decay_at (RepDistiller's 150/180/210 of 240 epochs)."""
    return step_factor(cfg.decay_at, steps, cfg.decay_rate)


SCHEDULES: dict[str, Callable[[TrainCfg, int], Callable[[int], float]]] = {"cosine": cosine, "step": step_decay}


def epoch_steps(epochs: int, n_images: int, batch_size: int) -> int:
    """Steps of ``epochs`` passes over ``n_images`` (real + fakes) at ``batch_size``."""
    return epochs * math.ceil(n_images / batch_size)


@dataclass
class FitResult:
    best: nn.Module
    last: nn.Module
    best_step: int
    history: list[dict[str, float]] = field(default_factory=list)


def fit(model: nn.Module, data: Prepared, cfg: TrainCfg, seed: int, desc: str, *, fakes: Split | None = None,
        fake_ratio: float = 0.0, steps: int | None = None, lr: float | None = None,
        log: Callable[[int, dict[str, float]], None] | None = None,
        distiller: Distiller | None = None, runtime: Runtime | None = None) -> FitResult:
    """Train ``model`` (the distiller's student when a distiller is given) on ``data``'s train split,
    picking the best checkpoint on its val split, with ``cfg``'s section (teacher, student, extractor)."""
    train, val, meta = data["train"], data["val"], data.meta
    if distiller is None:
        distiller = DISTILLERS.get("nokd")(model, KDContext(task=meta.task, input_shape=(
            meta.channels, meta.resolution, meta.resolution)))
    model = distiller.student
    lr = lr or cfg.lr
    device = next(model.parameters()).device
    runtime = runtime or Runtime(device)
    runtime.layout(distiller)  # the student, and a teacher / regressor the distiller holds, in place
    torch.manual_seed(seed)
    gen = torch.Generator(device=device).manual_seed(seed)
    # uint8 on the device (a quarter of float32's memory: ImageNet-100 at 128 px and 100k fakes fit),
    # converted per batch
    x_real, y_real = torch.as_tensor(train.images).to(device), targets(train.labels, meta).to(device)
    use_fakes = fakes is not None and len(fakes) > 0 and fake_ratio > 0
    steps = (epoch_steps(cfg.epochs, len(train) + (len(fakes) if use_fakes else 0), cfg.batch_size) if cfg.epochs
             else steps or cfg.steps)
    n_real = cfg.batch_size if not use_fakes else max(1, round(cfg.batch_size / (1 + fake_ratio)))
    real_sampler = EpochSampler(len(y_real), gen)
    if use_fakes:
        x_fake, y_fake = torch.as_tensor(fakes.images).to(device), targets(fakes.labels, meta).to(device)
        fake_sampler = EpochSampler(len(y_fake), gen)
    params = list(distiller.trainable())
    # fused on CUDA: one kernel, and fp16's GradScaler passes it the inf check instead of reading it on the host
    opt = torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=True,
                          fused=True if device.type == "cuda" else None)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, SCHEDULES[cfg.schedule](cfg, steps))
    scaler = runtime.scaler()
    distributed.check_batch(cfg.batch_size, f"batch_size of {desc}")
    forward = runtime.compiled(distributed.wrap(distiller, "forward_train") if distributed.active()
                               else distiller.forward_train)
    flip = cfg.augment and task_of(meta.task).mirror_invariant
    pad = max(1, meta.resolution // 8) if cfg.augment else 0
    best, best_val, best_step, history = copy.deepcopy(model), None, 0, []
    distiller.train()
    running: dict[str, float] = {}
    pending: list[torch.Tensor] = []  # per step: [loss, *terms], still on the device
    names: list[str] = []

    def read() -> None:  # one host sync for all steps since the last read
        if pending:
            first = step - len(pending) + 1
            for i, vals in enumerate(torch.stack(pending).tolist()):
                nonfinite(desc, first + i, dict(zip(names, vals, strict=True)), f"the learning rate ({lr:g})")
                for k, v in zip(names, vals, strict=True):
                    running[k] = 0.9 * running[k] + 0.1 * v if k in running else v
            pending.clear()
            bar.update(0, loss=running["loss"])

    with Progress(steps, desc, quiet=not distributed.is_main()) as bar:
        for step in range(1, steps + 1):
            runtime.step_begin()
            i = real_sampler.take(n_real)
            xb, yb = to_float(x_real[i]), y_real[i]
            if use_fakes:
                j = fake_sampler.take(cfg.batch_size - n_real)
                xb, yb = torch.cat([xb, to_float(x_fake[j])]), torch.cat([yb, y_fake[j]])
            if cfg.augment and cfg.crop == "resized":
                xb = random_resized_crop(xb, gen)
            xb = random_crop_flip(xb, 0 if cfg.crop == "resized" else pad, flip, gen) if cfg.augment else xb
            xb, yb = runtime.layout(distributed.shard(xb)), distributed.shard(yb)  # torchrun: this rank's slice
            with runtime.autocast():
                _, terms = forward(xb, yb)
            terms = {k: v.float() for k, v in terms.items()}
            loss = sum(terms.values())
            opt.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
            else:
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            if scaler is None:
                opt.step()
            else:
                scaler.step(opt)
                scaler.update()
            sched.step()
            names = ["loss", *terms]
            pending.append(torch.stack([loss.detach(), *(v.detach() for v in terms.values())]))
            bar.update(1)
            if step % READ_EVERY == 0:
                read()
            if step % cfg.eval_every == 0 or step == steps:
                read()
                row = {"step": step, **{f"train_{k}": v for k, v in running.items()}}
                row.update(metrics(predict(model, val.images), val.labels, meta, "val"))
                history.append(row)
                if log:
                    log(step, row)
                key = f"val_{task_of(meta.task).metric}"
                if better(row[key], best_val, meta.task):
                    best_val, best_step = row[key], step
                    best = copy.deepcopy(model)
                distiller.train()
    best.eval()
    model.eval()
    return FitResult(best=best, last=model, best_step=best_step, history=history)


def nonfinite(stage: str, step: int, values: dict[str, float], likely: str) -> None:
    """Stop the stage when a loss is NaN or infinite: training on would only write a broken model."""
    bad = {k: v for k, v in values.items() if not math.isfinite(v)}
    if bad:
        what = ", ".join(f"{k}={v}" for k, v in bad.items())
        raise CgankdError(stage, f"{what} at step {step}: training diverged; the likely cause is {likely}; "
                          "nothing was written")


def set_threads(n: int | None) -> None:
    if n:
        torch.set_num_threads(n)


def seed_everything(seed: int) -> None:
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
