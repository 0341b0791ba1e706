"""Fit cDR-RS for a generator: features of real (x, y) and of fresh fakes whose labels follow
the real label distribution (so the joint ratio is the conditional one), then the ratio MLP."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from cgankd.compute.device import module_device
from cgankd.config import Config
from cgankd.data.prepared import Prepared
from cgankd.features.extractor import extract
from cgankd.gan.train import sample
from cgankd.subsample.dre import DreCfg, RatioMLP, ratios, train_ratio
from cgankd.subsample.holdout import dre_reals
from cgankd.task import task_of
from cgankd.train.data import targets


class Cdrrs:
    """(images, G's labels) -> estimated r(x | y); G's labels are class ids or scaled labels."""

    def __init__(self, extractor: nn.Module, dre: RatioMLP) -> None:
        self.extractor, self.dre = extractor, dre

    def __call__(self, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return ratios(self.dre, extract(self.extractor, images), labels)


def fit_cdrrs(cfg: Config, g: nn.Module, extractor: nn.Module, data: Prepared,
              seed: int) -> tuple[Cdrrs, dict[str, Any], list[dict[str, float]]]:
    sc, meta, reals = cfg.subsample, data.meta, dre_reals(cfg, data)
    real_y = targets(reals.labels, meta).numpy()  # class ids, or labels scaled to [0, 1]
    rng = np.random.default_rng(seed)
    fake_y = rng.choice(real_y, sc.n_fake_train)
    fake_x = sample(g, fake_y, cfg.gan.z_dim, torch.Generator().manual_seed(seed), cfg.fakes.batch_size,
                    cfg.fakes.truncation)
    real_f, fake_f = extract(extractor, reals.images), extract(extractor, fake_x)
    steps = sc.dre_epochs * math.ceil(len(real_y) / sc.dre_batch_size) if sc.dre_epochs else sc.dre_steps
    dcfg = DreCfg(steps, sc.dre_batch_size, sc.dre_lr, sc.dre_hidden, sc.dre_lambda, sc.dre_weight_decay,
                  sc.dre_patience, net=sc.dre_net, betas=tuple(sc.dre_betas), decay_at=list(sc.dre_decay_at))
    num_classes = task_of(meta.task).groups(meta.num_classes)
    dev = module_device(extractor)
    gen = torch.Generator().manual_seed(seed + 1)

    def fresh(y: torch.Tensor) -> torch.Tensor:  # the authors': new fakes at every batch's labels
        x = sample(g, y.cpu().numpy(), cfg.gan.z_dim, gen, cfg.fakes.batch_size, cfg.fakes.truncation)
        return torch.as_tensor(extract(extractor, x)).to(dev)

    dre, history = train_ratio(real_f, real_y, fake_f, fake_y, num_classes, dcfg, seed, device=dev,
                               fresh=fresh if sc.dre_fakes == "fresh" else None)
    fit_r, real_r = ratios(dre, fake_f, fake_y), ratios(dre, real_f, real_y)
    stats = {"dre_mean_ratio_fake": float(fit_r.mean()), "dre_mean_ratio_real": float(real_r.mean()),
             "dre_median_ratio_fake": float(np.median(fit_r)), "dre_n_real": len(real_y),
             "dre_final_loss": history[-1]["dre_loss"], "dre_steps_run": history[-1]["step"]}
    checked = [h["dre_check_loss"] for h in history if "dre_check_loss" in h]
    if checked:
        stats["dre_best_check_loss"] = min(checked)
    return Cdrrs(extractor, dre), stats, history

