"""Generate-and-filter: draw fakes per group (a class, or a label on a grid covering the whole
label range) until the requested number per group passes the teacher filter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from cgankd.config import Config
from cgankd.data.prepared import Meta
from cgankd.fakes.adjust import adjust_labels
from cgankd.fakes.filter import class_cutoffs, cross_entropy, keep_mask, regression_cutoff
from cgankd.gan.train import sample
from cgankd.progress import Progress
from cgankd.train.evaluate import predict

# draw(group ids) -> (uint8 images, teacher score per image); lower scores are better
Draw = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass
class FakeSet:
    images: np.ndarray
    labels: np.ndarray  # labels the student trains on (adjusted when enabled), in the label's unit
    assigned: np.ndarray  # the labels G was conditioned on, in the label's unit
    score: np.ndarray  # teacher CE w.r.t. the assigned class, or |teacher - assigned| (scaled)
    cutoffs: np.ndarray  # per group
    burn_in_score: np.ndarray
    burn_in_groups: np.ndarray
    group: np.ndarray  # each kept fake's group
    generated: np.ndarray  # fakes drawn per group (kept + dropped)


def generate_and_filter(draw: Draw, cutoffs: np.ndarray, target: int, rho: float, max_rounds: int,
                        slack: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Returns kept images, their scores, their groups, and the number drawn per group.
    Each round asks every unfinished group for its shortfall / rho (+10%, + ``slack``); without
    filtering (rho = 1) exactly for its shortfall."""
    n_groups = len(cutoffs)
    kept_x: list[np.ndarray] = []
    kept_s: list[np.ndarray] = []
    kept_g: list[np.ndarray] = []
    n_kept = np.zeros(n_groups, np.int64)
    generated = np.zeros(n_groups, np.int64)
    with Progress(target * n_groups, "make-fakes") as bar:
        for _ in range(max_rounds):
            need = np.maximum(target - n_kept, 0)
            if need.sum() == 0:
                break
            ask = need if rho >= 1.0 else np.where(
                need > 0, np.ceil(need / max(rho, 0.05) * 1.1).astype(np.int64) + slack, 0)
            groups = np.repeat(np.arange(n_groups), ask)
            x, score = draw(groups)
            keep = keep_mask(score, groups, cutoffs, rho)
            # the first `need` kept fakes of each group (groups are contiguous in `groups`)
            csum = np.cumsum(keep)
            before = np.repeat(np.concatenate([[0], csum])[np.cumsum(ask) - ask], ask)
            sel = keep & (csum - before <= need[groups])
            kept_x.append(x[sel])
            kept_s.append(score[sel])
            kept_g.append(groups[sel])
            n_kept += np.bincount(groups[sel], minlength=n_groups)
            generated += ask
            bar.update(int(sel.sum()))
    order = np.argsort(np.concatenate(kept_g), kind="stable")
    return (np.concatenate(kept_x)[order], np.concatenate(kept_s)[order],
            np.concatenate(kept_g)[order], generated)


def make_class_fakes(cfg: Config, g: nn.Module, teacher: nn.Module, meta: Meta, seed: int) -> FakeSet:
    """Per class: cut-off = rho-quantile of the teacher's CE on a burn-in batch of that class."""
    gen = torch.Generator().manual_seed(seed)
    fc, fl, rho = cfg.fakes, cfg.filter, cfg.rho
    n = meta.num_classes

    def draw(classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = sample(g, classes, cfg.gan.z_dim, gen, fc.batch_size, fc.truncation)
        # the teacher sees the fakes as they are: no augmentation (a defect of the reference code)
        return x, cross_entropy(predict(teacher, x), classes)

    burn_groups = np.repeat(np.arange(n), max(fl.burn_in // n, 1))
    _, burn_score = draw(burn_groups)
    cutoffs = class_cutoffs(burn_score, burn_groups, n, rho)
    images, score, group, generated = generate_and_filter(draw, cutoffs, fc.n_per_class, rho, fl.max_rounds)
    labels = adjust_labels(predict(teacher, images), "classification") if cfg.adjust_labels else group
    return FakeSet(images, labels, group, score, cutoffs, burn_score, burn_groups, group, generated)


def label_grid(n: int) -> np.ndarray:
    """``n`` labels evenly covering the scaled range [0, 1], seen and unseen in training alike."""
    return np.linspace(0.0, 1.0, n).astype(np.float32)


def make_regression_fakes(cfg: Config, g: nn.Module, teacher: nn.Module, meta: Meta, seed: int) -> FakeSet:
    """One global cut-off: the rho-quantile of |teacher(x) - y| over a burn-in of fakes at random
    grid labels; labels replaced by the teacher's predictions when ``adjust`` is on."""
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    fc, fl, rho = cfg.fakes, cfg.filter, cfg.rho
    grid = label_grid(fc.n_labels)

    def draw(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = sample(g, grid[groups], cfg.gan.z_dim, gen, fc.batch_size, fc.truncation)
        return x, np.abs(predict(teacher, x).reshape(-1) - grid[groups])

    burn_groups = np.sort(rng.integers(0, len(grid), max(fl.burn_in, 1)))
    _, burn_score = draw(burn_groups)
    cutoffs = np.full(len(grid), regression_cutoff(burn_score, rho))
    images, score, group, generated = generate_and_filter(draw, cutoffs, fc.n_per_label, rho, fl.max_rounds,
                                                          slack=1)
    assigned = meta.unscale(grid[group])
    labels = assigned
    if cfg.adjust_labels:  # the teacher's prediction, kept inside the label range
        labels = meta.unscale(np.clip(adjust_labels(predict(teacher, images), "regression"), 0.0, 1.0))
    return FakeSet(images, labels, assigned, score, cutoffs, burn_score, burn_groups, group, generated)
