"""Train the conditional GAN (class-conditional, or CcGAN for a continuous label), checkpointing
atomically so an interrupted run resumes.

The step keeps the device busy: the training images live on the model's device, random numbers
are drawn there, and nothing waits for the GPU inside a step (tests/test_host_syncs.py counts it):
the losses stay on the device and are read every ``LOG_EVERY`` steps (and at checkpoints) in one
transfer. ``runtime`` sets the device, autocast precision and ``torch.compile`` of the G and D
losses (cgankd.compute.device); under CUDA graphs each iteration marks a new graph step and the losses
are copied out before the next compiled call reuses their memory.

Under ``torchrun``, G and D run in DistributedDataParallel: every rank draws the global batch and
trains on its share; rank 0 alone keeps the EMA, scores it, and writes checkpoints, and every rank
resumes from rank 0's checkpoint (all ranks hold the same weights and random-number state).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from cgankd.base.errors import CgankdError
from cgankd.base.progress import Progress
from cgankd.compute import distributed
from cgankd.compute.device import CPU, Runtime, conv_autotune, module_device
from cgankd.config import GanCfg
from cgankd.gan.archs import build_discriminator, build_generator
from cgankd.gan.conditions import make_condition
from cgankd.gan.diffaug import parse_policy
from cgankd.gan.ema import EMA
from cgankd.gan.step import Losses
from cgankd.gan.stop import Stop
from cgankd.gan.watch import Watch
from cgankd.store import files as model_files
from cgankd.train.loop import nonfinite

LOG_EVERY = 50  # steps between reads of the losses (history, progress, MLflow)


def build_gan(cfg: GanCfg, num_classes: int | None, resolution: int, channels: int,
              y2h: torch.nn.Module | None = None) -> tuple[torch.nn.Module, torch.nn.Module]:
    """G and D of ``gan.arch``; ``y2h`` a trained label embedding both condition on, frozen
    (gan.ccgan.embedding=y2h)."""
    gan = asdict(cfg)
    return (build_generator(gan, num_classes, resolution, channels, y2h),
            build_discriminator(gan, num_classes, resolution, channels, y2h))


# when training stops, not what it computes: a checkpoint of the same run trains on under new limits
STOP_FIELDS = ("iterations", "checkpoint_every", "stop_patience", "target_score", "max_minutes")


def fingerprint(cfg: GanCfg, seed: int, images: np.ndarray, labels: np.ndarray, runtime: Runtime = CPU) -> str:
    what = {k: v for k, v in asdict(cfg).items() if k not in STOP_FIELDS and (k, v) != ("arch", "biggan")}
    h = hashlib.sha256(json.dumps(what, sort_keys=True).encode())
    h.update(str(seed).encode())
    if runtime.device.type != "cpu" or runtime.precision != "fp32":  # CPU fp32 keeps its old fingerprints
        h.update(f"{runtime.device.type}/{runtime.precision}".encode())
    if runtime.channels_last:  # another layout sums in another order: not the contiguous run's numbers
        h.update(b"channels_last")
    h.update(np.ascontiguousarray(images).tobytes())
    h.update(np.ascontiguousarray(labels).tobytes())
    return h.hexdigest()[:16]


def _resume(ckpt_path: Path, fp: str) -> tuple[dict, dict] | None:
    """The checkpoint's (meta, state) when it belongs to this run; anything else starts afresh."""
    if not ckpt_path.is_file():
        return None
    try:
        meta, state = model_files.read(ckpt_path, "gan_checkpoint")
    except CgankdError as exc:
        print(f"train-gan: ignoring checkpoint {exc.problem.split(';')[0]}: starting afresh", file=sys.stderr)
        return None
    return (meta, state) if meta.get("fingerprint") == fp else None


def real(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float in [-1, 1], the GAN's input range."""
    return images.float().div_(127.5).sub_(1.0)


def _backward(loss: torch.Tensor, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None) -> None:
    opt.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        opt.step()
        return
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()


def train_gan(cfg: GanCfg, images: np.ndarray, labels: np.ndarray, num_classes: int | None, seed: int,
              ckpt_path: Path, log: Callable[[int, dict[str, float]], None] | None = None,
              stop_after: int | None = None, runtime: Runtime = CPU,
              watch: Watch | None = None, stop: Stop | None = None,
              y2h: torch.nn.Module | None = None) -> tuple[torch.nn.Module, list[dict[str, float]]]:
    """Returns the last EMA generator and the loss history. ``num_classes`` None trains a CcGAN on
    ``labels`` scaled to [0, 1]. Resumes from ``ckpt_path`` when it holds a checkpoint of the
    same computation (config less its stop fields, seed, data and runtime); ``stop_after``
    simulates a crash. ``watch`` scores the EMA generator every ``watch.every`` iterations and
    keeps the best (confirmed) one (``watch.best_state``). ``stop`` (default: the cap and budget of ``cfg``)
    ends training and records why (``stop.reason``, cgankd/gan/stop.py); it is asked again on
    resume, so raised limits train on and unchanged ones do not."""
    torch.manual_seed(seed)
    dev = runtime.device
    _, c, res, _ = images.shape
    g, d = build_gan(cfg, num_classes, res, c, y2h)
    g, d = runtime.layout(g.to(dev)), runtime.layout(d.to(dev))
    ema = EMA(g, cfg.ema_decay, cfg.ema_start, runtime)
    # fused: one kernel per optimiser step on the GPU, one op per parameter on the CPU
    opt_g = torch.optim.Adam(g.parameters(), cfg.lr_g, betas=tuple(cfg.betas), fused=True)
    opt_d = torch.optim.Adam(d.parameters(), cfg.lr_d, betas=tuple(cfg.betas), fused=True)
    scaler_g, scaler_d = runtime.scaler(), runtime.scaler()
    gen = runtime.generator(seed)
    fp = fingerprint(cfg, seed, images, labels, runtime)
    stop = stop or Stop(cfg.iterations, cfg.max_minutes)
    start, history = 0, []
    resumed = _resume(ckpt_path, fp)
    if resumed is not None:
        meta, state = resumed
        g.load_state_dict(state["g"])
        d.load_state_dict(state["d"])
        ema.model.load_state_dict(state["ema"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        gen.set_state(state["gen"])
        for name, scaler in (("scaler_g", scaler_g), ("scaler_d", scaler_d)):
            if scaler is not None and name in state:  # fp16: the loss scale found so far, not 65,536 again
                scaler.load_state_dict(state[name])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"], dev)
        start, history = meta["step"], meta["history"]
        stop.resume(float(meta.get("seconds", 0.0)))
        if distributed.is_main():
            print(f"gan: resumed from its checkpoint at iteration {start}", file=sys.stderr, flush=True)
        if watch is not None:
            watch.load(meta, state.get("best"))
    x_all = torch.as_tensor(images).to(dev)  # uint8 on the device, to [-1, 1] per batch
    cond = make_condition(cfg, labels, num_classes).to(dev)
    augs = parse_policy(cfg.diffaug)
    bs = cfg.batch_size
    distributed.check_batch(bs, "gan.batch_size")
    main = distributed.is_main()
    # torchrun: buffers are not broadcast (spectral norm's u / v evolve identically on every rank)
    losses = Losses(distributed.wrap(g, buffers=False), distributed.wrap(d, buffers=False), d, augs, runtime)
    part = distributed.shard  # torchrun: this rank's share of a global batch
    pending: list[tuple[int, torch.Tensor]] = []  # (step, [loss_d, loss_g]) still on the device

    def flush(bar: Progress) -> None:
        if not pending:
            return
        values = torch.stack([v for _, v in pending]).tolist()  # the one host sync per LOG_EVERY steps
        for (step, _), (ld, lg) in zip(pending, values, strict=True):
            nonfinite("train-gan", step, {"loss_d": ld, "loss_g": lg}, f"gan.lr_d / gan.lr_g ({cfg.lr_d:g} / "
                      f"{cfg.lr_g:g}) or the precision")
            row = {"step": step, "loss_d": ld, "loss_g": lg}
            history.append(row)
            if log and (step % LOG_EVERY == 0 or step == cfg.iterations):
                log(step, row)
        bar.update(0, loss_d=history[-1]["loss_d"], loss_g=history[-1]["loss_g"])
        pending.clear()

    def save(step: int) -> None:
        if not main:
            return
        state = {"g": g.state_dict(), "d": d.state_dict(), "ema": ema.model.state_dict(),
                 "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "gen": gen.get_state(),
                 "torch_rng": torch.get_rng_state()}
        if dev.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(dev)
        for name, scaler in (("scaler_g", scaler_g), ("scaler_d", scaler_d)):
            if scaler is not None:
                state[name] = scaler.state_dict()
        if watch is not None and watch.best_state is not None:
            state["best"] = watch.best_state
        meta = {"fingerprint": fp, "step": step, "history": history, "stop_reason": stop.reason,
                "seconds": stop.seconds, **(watch.state() if watch is not None else {"watch": []})}
        model_files.save(ckpt_path, "gan_checkpoint", meta, state)

    done = start > 0 and distributed.from_main(main and stop.check(start, watch) is not None, dev)
    with Progress(cfg.iterations, "train-gan", initial=start, quiet=not main) as bar, conv_autotune(dev):
        step = start
        while not done:
            step += 1
            runtime.step_begin()
            for _ in range(cfg.d_steps):
                b = distributed.shard_fields(cond.d_batch(bs, gen))
                z = part(torch.randn(bs, cfg.z_dim, generator=gen, device=dev))
                x_real = runtime.layout(real(x_all[b.real_idx]))
                loss_d = losses.d_loss(z, b.fake_labels, x_real, b.target, b.real_w, b.fake_w)
                _backward(loss_d, opt_d, scaler_d)
            loss_d = runtime.keep(loss_d)  # before G's compiled call, which may reuse its memory (CUDA graphs)
            yf = part(cond.g_labels(bs, gen))
            z = part(torch.randn(bs, cfg.z_dim, generator=gen, device=dev))
            loss_g = losses.g_loss(z, yf)
            _backward(loss_g, opt_g, scaler_g)
            loss_g = runtime.keep(loss_g)
            if main:
                ema.update(g, step)
            pending.append((step, torch.stack([loss_d, loss_g])))
            bar.update(1)
            done = _decide(step, cfg, stop, watch, ema.model, main, dev)
            if done or step % cfg.checkpoint_every == 0 or step % LOG_EVERY == 0:
                flush(bar)
            if done or step % cfg.checkpoint_every == 0:
                save(step)
            if stop_after is not None and step >= stop_after and not done:
                raise KeyboardInterrupt(f"stopped after step {step}")
    if main and stop.reason is not None and stop.reason != "iterations":
        print(f"train-gan: {stop.describe(step)}", file=sys.stderr)
    return ema.model.eval(), history


def _decide(step: int, cfg: GanCfg, stop: Stop, watch: Watch | None, ema_g: torch.nn.Module, main: bool,
            dev: torch.device) -> bool:
    """After ``step``: score the EMA generator when the watch is due, then ask the stop rule; a
    run that stops for time is scored at its last step too. Under torchrun rank 0 decides, and
    the ranks agree once per ``LOG_EVERY`` steps and at every check (one broadcast each)."""
    due = watch is not None and watch.due(step, cfg.iterations)
    if not (due or step >= cfg.iterations or step % LOG_EVERY == 0 or not distributed.active()):
        return False
    reason = None
    if main:
        stop.tick()
        if due:
            watch.check(step, ema_g)
        reason = stop.check(step, watch)
        if reason == "time" and watch is not None and not due and watch.every > 0:
            watch.check(step, ema_g)
            reason = stop.check(step, watch)
    return distributed.from_main(reason is not None, dev)


@torch.no_grad()
def sample(g: torch.nn.Module, labels: np.ndarray, z_dim: int, gen: torch.Generator,
           batch_size: int = 500, truncation: float | None = None) -> np.ndarray:
    """uint8 images for the given labels: class indices, or labels scaled to [0, 1] for a CcGAN.
    ``gen`` is a CPU generator, so the same seed gives the same noise on every device."""
    g.eval()
    dev = module_device(g)
    out = []
    dtype = torch.float32 if g.num_classes is None else torch.long
    for i in range(0, len(labels), batch_size):
        y = torch.as_tensor(labels[i:i + batch_size], dtype=dtype)
        z = torch.randn(len(y), z_dim, generator=gen)
        if truncation is not None:
            z = torch.clamp(z, -truncation, truncation)
        x = g(z.to(dev), y.to(dev))
        out.append(((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu().numpy())
    return np.concatenate(out) if out else np.empty((0,), np.uint8)
