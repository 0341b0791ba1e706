"""Conditional density ratio r(x | y) = p_real(x | y) / p_fake(x | y), estimated in a feature space.

An MLP on [standardised feature, label embedding] with a non-negative output (ReLU), trained
with the penalised softplus (SP) loss of cDR-RS:

    L = mean_fake(sigmoid(r) r) - mean_fake(softplus(r)) - mean_real(sigmoid(r))
        + lambda (mean_fake(r) - 1)^2

whose minimiser is the true ratio; the penalty pins E_fake[r] = 1, as a ratio must.

Two heads (``subsample.dre_net``): ``mlp2``, two hidden layers of ``hidden`` units, and ``mlp5``, the
cDR-RS authors' MLP5 (2048-1024-512-256-128, each GroupNorm(8), ReLU and dropout 0.5). The fakes are
a fixed pool drawn once, or (``fresh``, the authors') drawn anew at every step at the real batch's
labels.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cgankd.base.progress import Progress


def sp_loss(r_real: torch.Tensor, r_fake: torch.Tensor, lam: float) -> torch.Tensor:
    """The penalised softplus loss for ratios on real and on fake samples."""
    fake_term = (torch.sigmoid(r_fake) * r_fake - F.softplus(r_fake)).mean()
    return fake_term - torch.sigmoid(r_real).mean() + lam * (r_fake.mean() - 1.0) ** 2


class LabelFeatures(nn.Module):
    """Class index -> learned embedding; scaled label in [0, 1] -> [y, sin, cos] features."""

    def __init__(self, num_classes: int | None, dim: int = 16, n_freq: int = 4) -> None:
        super().__init__()
        self.num_classes = num_classes
        if num_classes is None:
            self.register_buffer("freqs", (2.0 ** torch.arange(n_freq)) * math.pi, persistent=False)
            self.dim = 1 + 2 * n_freq
        else:
            self.table = nn.Embedding(num_classes, dim)
            self.dim = dim

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        if self.num_classes is not None:
            return self.table(y.long())
        y = y.float().reshape(-1, 1)
        f = y * self.freqs
        return torch.cat([y, torch.sin(f), torch.cos(f)], 1)


def mlp2(d_in: int, hidden: int) -> list[nn.Module]:
    return [nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1), nn.ReLU()]


def mlp5(d_in: int, hidden: int) -> list[nn.Module]:
    """The authors' MLP5 (``hidden`` unused: its widths are fixed)."""
    layers: list[nn.Module] = []
    for width in (2048, 1024, 512, 256, 128):
        layers += [nn.Linear(d_in, width), nn.GroupNorm(8, width), nn.ReLU(), nn.Dropout(0.5)]
        d_in = width
    return [*layers, nn.Linear(d_in, 1), nn.ReLU()]


NETS: dict[str, Callable[[int, int], list[nn.Module]]] = {"mlp2": mlp2, "mlp5": mlp5}


class RatioMLP(nn.Module):
    def __init__(self, feat_dim: int, num_classes: int | None, hidden: int = 256, net: str = "mlp2") -> None:
        super().__init__()
        self.label = LabelFeatures(num_classes)
        self.register_buffer("mean", torch.zeros(feat_dim))
        self.register_buffer("std", torch.ones(feat_dim))
        self.hidden, self.net_name = hidden, net
        self.net = nn.Sequential(*NETS[net](feat_dim + self.label.dim, hidden))

    def forward(self, feats: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = (feats - self.mean) / self.std
        return self.net(torch.cat([h, self.label(y)], 1)).reshape(-1)


@dataclass
class DreCfg:
    steps: int = 2000
    batch_size: int = 256
    lr: float = 1e-3
    hidden: int = 256
    lam: float = 0.01
    weight_decay: float = 1e-3
    patience: int | None = None  # early stopping on the check sets (None: train every step)
    checks: int = 20
    net: str = "mlp2"
    betas: tuple[float, float] = (0.9, 0.999)
    decay_at: list[float] = field(default_factory=list)  # lr x 0.1 at these fractions of the steps


def check_split(n: int, rng: np.random.Generator, fraction: float = 0.2) -> np.ndarray:
    """True for the ``fraction`` of ``n`` samples held out to check the fit (at least one)."""
    mask = np.zeros(n, bool)
    if n >= 2:
        mask[rng.choice(n, min(max(round(fraction * n), 1), n - 1), replace=False)] = True
    return mask


def train_ratio(real_f: np.ndarray, real_y: np.ndarray, fake_f: np.ndarray, fake_y: np.ndarray,
                num_classes: int | None, cfg: DreCfg, seed: int, desc: str = "density-ratio",
                device: torch.device | str = "cpu", fresh: Callable[[torch.Tensor], torch.Tensor] | None = None
                ) -> tuple[RatioMLP, list[dict[str, float]]]:
    """Fit r(x | y) on features of real (x, y) pairs and fake (x, y) pairs on ``device``; returns
    the model (eval mode) and a loss history. Labels: class indices, or scaled to [0, 1].
    With ``cfg.patience`` a fifth of the reals and of the fakes is held out: the loss on it is
    checked ``cfg.checks`` times, training stops after ``patience`` checks without improvement,
    and the weights of the best check are returned. ``fresh`` (labels -> features of new fakes at those
    labels) replaces the pool in training: each step's fakes are drawn at the real batch's labels."""
    torch.manual_seed(seed)
    dev = torch.device(device)
    gen = torch.Generator(device=dev).manual_seed(seed)
    rf = torch.as_tensor(real_f, dtype=torch.float32).to(dev)
    ff = torch.as_tensor(fake_f, dtype=torch.float32).to(dev)
    ry, fy = torch.as_tensor(np.asarray(real_y)).to(dev), torch.as_tensor(np.asarray(fake_y)).to(dev)
    check = None
    if cfg.patience is not None:
        rng = np.random.default_rng(seed)
        rc = torch.as_tensor(check_split(len(rf), rng)).to(dev)
        fc = torch.as_tensor(check_split(len(ff), rng)).to(dev)
        check = (rf[rc], ry[rc], ff[fc], fy[fc])
        rf, ry, ff, fy = rf[~rc], ry[~rc], ff[~fc], fy[~fc]
    model = RatioMLP(rf.shape[1], num_classes, cfg.hidden, cfg.net).to(dev)
    model.mean.copy_(rf.mean(0))
    model.std.copy_(rf.std(0).clamp_min(1e-6) if len(rf) > 1 else torch.ones_like(rf[0]))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    marks = [round(f * cfg.steps) for f in cfg.decay_at]
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.1 ** sum(s >= m for m in marks))
    history, running, pending, seen = [], 0.0, [], 0
    best, best_state, stale = float("inf"), None, 0
    every = max(cfg.steps // (cfg.checks if check is not None else 10), 1)
    with Progress(cfg.steps, desc) as bar:
        for step in range(1, cfg.steps + 1):
            i = torch.randint(len(rf), (cfg.batch_size,), generator=gen, device=dev)
            if fresh is None:
                j = torch.randint(len(ff), (cfg.batch_size,), generator=gen, device=dev)
                loss = sp_loss(model(rf[i], ry[i]), model(ff[j], fy[j]), cfg.lam)
            else:
                loss = sp_loss(model(rf[i], ry[i]), model(fresh(ry[i]), ry[i]), cfg.lam)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            pending.append(loss.detach())
            bar.update(1)
            if step % every != 0 and step != cfg.steps:
                continue
            for v in torch.stack(pending).tolist():  # one read per history row
                running = 0.95 * running + 0.05 * v if seen else v
                seen += 1
            pending.clear()
            row = {"step": step, "dre_loss": running}
            if check is not None:
                with torch.no_grad():
                    model.eval()
                    row["dre_check_loss"] = float(sp_loss(model(*check[:2]), model(*check[2:]), cfg.lam))
                    model.train()
                if row["dre_check_loss"] < best:
                    best, stale = row["dre_check_loss"], 0
                    best_state = {k: v.clone() for k, v in model.state_dict().items()}
                else:
                    stale += 1
            history.append(row)
            bar.update(0, loss=running)
            if check is not None and stale >= cfg.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.eval(), history


@torch.no_grad()
def ratios(model: RatioMLP, feats: np.ndarray, labels: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    dev = model.mean.device
    f = torch.as_tensor(feats, dtype=torch.float32)
    y = torch.as_tensor(np.asarray(labels))
    out = [model(f[i:i + batch_size].to(dev), y[i:i + batch_size].to(dev)).cpu() for i in range(0, len(f), batch_size)]
    return torch.cat(out).numpy() if out else np.empty(0, np.float32)
