"""Train the conditional GAN (class-conditional, or CcGAN for a continuous label), checkpointing
atomically so an interrupted run resumes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from cgankd.config import GanCfg
from cgankd.gan.biggan import Discriminator, Generator
from cgankd.gan.conditions import make_condition
from cgankd.gan.diffaug import diff_augment, parse_policy
from cgankd.gan.ema import EMA
from cgankd.gan.losses import d_hinge, g_hinge
from cgankd.io import atomic_path
from cgankd.progress import Progress


def build_gan(cfg: GanCfg, num_classes: int | None, resolution: int, channels: int):
    g = Generator(num_classes, resolution, channels, cfg.z_dim, cfg.g_ch, cfg.embed_dim)
    d = Discriminator(num_classes, resolution, channels, cfg.d_ch)
    return g, d


def fingerprint(cfg: GanCfg, seed: int, images: np.ndarray, labels: np.ndarray) -> str:
    h = hashlib.sha256(json.dumps(asdict(cfg), sort_keys=True).encode())
    h.update(str(seed).encode())
    h.update(np.ascontiguousarray(images).tobytes())
    h.update(np.ascontiguousarray(labels).tobytes())
    return h.hexdigest()[:16]


def train_gan(cfg: GanCfg, images: np.ndarray, labels: np.ndarray, num_classes: int | None, seed: int,
              ckpt_path: Path, log: Callable[[int, dict[str, float]], None] | None = None,
              stop_after: int | None = None) -> tuple[Generator, list[dict[str, float]]]:
    """Returns the EMA generator and the loss history. ``num_classes`` None trains a CcGAN on
    ``labels`` scaled to [0, 1]. Resumes from ``ckpt_path`` when it holds a checkpoint of the
    same config, seed and data; ``stop_after`` simulates a crash."""
    torch.manual_seed(seed)
    _, c, res, _ = images.shape
    g, d = build_gan(cfg, num_classes, res, c)
    ema = EMA(g, cfg.ema_decay, cfg.ema_start)
    opt_g = torch.optim.Adam(g.parameters(), cfg.lr_g, betas=tuple(cfg.betas))
    opt_d = torch.optim.Adam(d.parameters(), cfg.lr_d, betas=tuple(cfg.betas))
    gen = torch.Generator().manual_seed(seed)
    fp = fingerprint(cfg, seed, images, labels)
    start, history = 0, []
    if ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if state.get("fingerprint") == fp:
            g.load_state_dict(state["g"])
            d.load_state_dict(state["d"])
            ema.model.load_state_dict(state["ema"])
            opt_g.load_state_dict(state["opt_g"])
            opt_d.load_state_dict(state["opt_d"])
            gen.set_state(state["gen"])
            torch.set_rng_state(state["torch_rng"])
            start, history = state["step"], state["history"]
    x_all = torch.as_tensor(images).float().div_(127.5).sub_(1.0)
    cond = make_condition(cfg, labels, num_classes)
    augs = parse_policy(cfg.diffaug)
    bs = cfg.batch_size

    def save(step: int) -> None:
        state = {"fingerprint": fp, "step": step, "history": history, "g": g.state_dict(),
                 "d": d.state_dict(), "ema": ema.model.state_dict(), "opt_g": opt_g.state_dict(),
                 "opt_d": opt_d.state_dict(), "gen": gen.get_state(), "torch_rng": torch.get_rng_state()}
        with atomic_path(ckpt_path) as tmp:
            torch.save(state, tmp)

    with Progress(cfg.iterations, "train-gan", initial=start) as bar:
        for step in range(start + 1, cfg.iterations + 1):
            for _ in range(cfg.d_steps):
                b = cond.d_batch(bs, gen)
                z = torch.randn(bs, cfg.z_dim, generator=gen)
                with torch.no_grad():
                    xf = g(z, b.fake_labels)
                loss_d = d_hinge(d(diff_augment(x_all[b.real_idx], augs), b.target),
                                 d(diff_augment(xf, augs), b.target), b.real_w, b.fake_w)
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
            yf = cond.g_labels(bs, gen)
            z = torch.randn(bs, cfg.z_dim, generator=gen)
            loss_g = g_hinge(d(diff_augment(g(z, yf), augs), yf))
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            ema.update(g, step)
            row = {"step": step, "loss_d": loss_d.item(), "loss_g": loss_g.item()}
            history.append(row)
            bar.update(1, loss_d=row["loss_d"], loss_g=row["loss_g"])
            if log and (step % 50 == 0 or step == cfg.iterations):
                log(step, row)
            if step % cfg.checkpoint_every == 0 or step == cfg.iterations:
                save(step)
            if stop_after is not None and step >= stop_after:
                raise KeyboardInterrupt(f"stopped after step {step}")
    return ema.model.eval(), history


@torch.no_grad()
def sample(g: Generator, labels: np.ndarray, z_dim: int, gen: torch.Generator,
           batch_size: int = 500, truncation: float | None = None) -> np.ndarray:
    """uint8 images for the given labels: class indices, or labels scaled to [0, 1] for a CcGAN."""
    g.eval()
    out = []
    dtype = torch.float32 if g.num_classes is None else torch.long
    for i in range(0, len(labels), batch_size):
        y = torch.as_tensor(labels[i:i + batch_size], dtype=dtype)
        z = torch.randn(len(y), z_dim, generator=gen)
        if truncation is not None:
            z = torch.clamp(z, -truncation, truncation)
        x = g(z, y)
        out.append(((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy())
    return np.concatenate(out) if out else np.empty((0,), np.uint8)
