"""Generate-and-filter per class until the requested number of fakes per class is kept."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from cgankd.config import Config
from cgankd.fakes.adjust import adjust_labels
from cgankd.fakes.filter import class_cutoffs, cross_entropy, keep_mask
from cgankd.gan.train import sample
from cgankd.progress import Progress
from cgankd.train.evaluate import predict


@dataclass
class FakeSet:
    images: np.ndarray
    labels: np.ndarray  # labels the student trains on (adjusted when enabled)
    assigned: np.ndarray  # the labels G was conditioned on
    ce: np.ndarray  # teacher CE w.r.t. the assigned label
    cutoffs: np.ndarray
    burn_in_ce: np.ndarray
    burn_in_labels: np.ndarray
    generated: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # per class


def make_class_fakes(cfg: Config, g: nn.Module, teacher: nn.Module, num_classes: int,
                     seed: int) -> FakeSet:
    gen = torch.Generator().manual_seed(seed)
    fc, fl = cfg.fakes, cfg.filter
    rho = fl.rho if fl.enabled else 1.0

    def draw(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = sample(g, labels, cfg.gan.z_dim, gen, fc.batch_size, fc.truncation)
        # the teacher sees the fakes as they are: no augmentation (a defect of the reference code)
        return x, cross_entropy(predict(teacher, x), labels)

    burn_labels = np.repeat(np.arange(num_classes), max(fl.burn_in // num_classes, 1))
    _, burn_ce = draw(burn_labels)
    cutoffs = class_cutoffs(burn_ce, burn_labels, num_classes, rho)
    kept_x: list[list[np.ndarray]] = [[] for _ in range(num_classes)]
    kept_ce: list[list[np.ndarray]] = [[] for _ in range(num_classes)]
    n_kept = np.zeros(num_classes, np.int64)
    generated = np.zeros(num_classes, np.int64)
    target = fc.n_per_class
    with Progress(target * num_classes, "make-fakes") as bar:
        for _ in range(fl.max_rounds):
            need = np.maximum(target - n_kept, 0)
            if need.sum() == 0:
                break
            # ask for enough to cover the expected rejection rate, at least a little per class
            ask = np.where(need > 0, np.ceil(need / max(rho, 0.05) * 1.1).astype(np.int64) + 8, 0)
            labels = np.repeat(np.arange(num_classes), ask)
            x, ce = draw(labels)
            keep = keep_mask(ce, labels, cutoffs, rho)
            for c in range(num_classes):
                sel = np.flatnonzero(keep & (labels == c))[: need[c]]
                kept_x[c].append(x[sel])
                kept_ce[c].append(ce[sel])
                n_kept[c] += len(sel)
                generated[c] += ask[c]
                bar.update(len(sel))
    images = np.concatenate([np.concatenate(k) for k in kept_x if k])
    assigned = np.repeat(np.arange(num_classes), n_kept)
    ce = np.concatenate([np.concatenate(k) for k in kept_ce if k])
    labels = assigned
    if cfg.adjust.enabled:
        labels = adjust_labels(predict(teacher, images), "classification")
    return FakeSet(images, labels, assigned, ce, cutoffs, burn_ce, burn_labels, generated)
