"""train-gan: the class-conditional GAN (classification) or the CcGAN (regression) on the real
training set; resumes after a crash."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from cgankd import store
from cgankd.base import figures
from cgankd.base.io import write_text
from cgankd.base.tracker import NullTracker
from cgankd.compute import distributed
from cgankd.config import Config
from cgankd.data.prepared import Meta
from cgankd.data.preview import save_grid
from cgankd.gan.conditions import make_condition
from cgankd.gan.stop import Stop
from cgankd.gan.train import sample, train_gan
from cgankd.gan.watch import Watch
from cgankd.quality.curve import curve_csv, read_curve
from cgankd.quality.relative import absolute_score, relative_score
from cgankd.quality.scores import label_score
from cgankd.stages.common import at, prepared, setup, teacher_metric, write_history
from cgankd.task import task_of
from cgankd.train.evaluate import predict

SHOWN = 8  # fakes per class / label row in each progress grid


def watch_labels(meta: Meta, n: int) -> tuple[np.ndarray, np.ndarray]:
    """G's labels of the fixed check batch and the same labels in the label's unit: ``n`` per
    class, or ``n`` at each of 10 labels across the range."""
    if task_of(meta.task).categorical:
        y = np.repeat(np.arange(meta.num_classes), n)
        return y, y
    scaled = np.repeat(np.linspace(0.0, 1.0, 10), n).astype(np.float32)
    return scaled, meta.unscale(scaled)


def make_watch(cfg: Config, meta: Meta, teacher: torch.nn.Module, tracker: NullTracker,
               reference: float, stop: Stop, minutes: dict[int, float]) -> Watch:
    """The teacher's label score on the same fakes (fixed z) at every check, logged with a grid
    and written to gan/quality.csv as training goes; ``minutes`` collects the training minutes
    at each check (those of a resumed run's earlier checks are read back from quality.csv)."""
    n = cfg.gan.score_n
    g_labels, labels = watch_labels(meta, n)
    shown = np.concatenate([np.arange(i, i + min(SHOWN, n)) for i in range(0, len(labels), n)])
    higher = task_of(meta.task).higher_is_better

    def fakes_score(g: torch.nn.Module, g_in: np.ndarray, true: np.ndarray, seed: int) -> tuple[np.ndarray, float]:
        """The teacher's label score of ``g``'s fakes for ``g_in`` (fixed noise from ``seed``)."""
        imgs = sample(g, g_in, cfg.gan.z_dim, torch.Generator().manual_seed(seed))
        return imgs, label_score(predict(teacher, imgs), true, meta)

    def score(step: int, g: torch.nn.Module) -> float:
        imgs, value = fakes_score(g, g_labels, labels, cfg.seed + 7)
        minutes[step] = stop.seconds / 60.0
        tracker.log_metrics({"gan_label_score": value, "gan_relative_score": relative_score(value, reference, higher),
                             "gan_minutes": minutes[step]}, step=step)
        path = save_grid(at(cfg, "gan_progress") / f"step_{step:06d}.png", imgs[shown], labels[shown], meta.task,
                         meta.classes, per_row=SHOWN)
        tracker.log_artifact(path, "samples")
        return value

    c_labels, c_true = watch_labels(meta, 2 * n)

    def confirm(step: int, g: torch.nn.Module) -> float:  # other fakes, twice as many: picks the generator kept
        _, value = fakes_score(g, c_labels, c_true, cfg.seed + 8)
        tracker.log_metrics({"gan_confirm_relative_score": relative_score(value, reference, higher)}, step=step)
        return value

    def checked(w: Watch) -> None:
        write_text(at(cfg, "gan_quality"), curve_csv(w.scores, meta.task, reference, minutes, None, w.confirmed))

    target = None if cfg.gan.target_score is None else absolute_score(cfg.gan.target_score, reference, higher)
    previous = read_curve(at(cfg, "gan_quality"))
    minutes.update({s: m for s, m in zip(previous[0], previous[2], strict=True)})
    return Watch(score, cfg.gan.score_every, cfg.gan.stop_patience, higher, target, checked, confirm)


def generator_info(cfg: Config, meta: Meta, num_classes: int | None) -> dict[str, Any]:
    """What a generator file says of the data and the GAN config it was made for."""
    return {"num_classes": num_classes, "task": meta.task, "resolution": meta.resolution, "channels": meta.channels,
            "label_range": meta.label_range, "gan": asdict(cfg.gan)}


def released(cfg: Config, meta: Meta) -> tuple[torch.nn.Module, dict[str, Any], str]:
    """The authors' generator in ``gan.init`` (classification: BigGAN-PyTorch's ``G_ema.pth``; regression:
    their SAGAN CcGAN with ``gan.ccgan.y2h_init``), what its file will say, and a line naming it."""
    categorical = task_of(meta.task).categorical
    info = generator_info(cfg, meta, meta.num_classes if categorical else None)
    if categorical:
        from cgankd.gan.biggan_pytorch import load, read_architecture

        g = load(cfg.gan.init, meta.num_classes, meta.resolution, meta.channels, cfg.gan.z_dim)
        arch = read_architecture(g.state_dict())
        name = "BigGAN-deep" if "shared_dim" in arch else "BigGAN-PyTorch"
        return g, {**info, "arch": "biggan-pytorch", "biggan_pytorch": arch}, f"{name}, {arch}"
    from cgankd.gan import ccgan_release

    c = cfg.gan.ccgan
    g = ccgan_release.load(cfg.gan.init, c.y2h_init, meta.resolution, meta.channels, cfg.gan.z_dim,
                           tuple(meta.label_range), c.init_label_range)
    arch = ccgan_release.architecture(g.state_dict())
    gan = {**info["gan"], "arch": "sagan", "g_ch": arch["ch"], "embed_dim": arch["embed_dim"],
           "ccgan": {**info["gan"]["ccgan"], "embedding": "y2h"}}
    a, b = g.label_map.tolist()
    return g, {**info, "gan": gan}, f"the authors' SAGAN CcGAN, {arch}, label map {a:.4f} y + {b:.4f}"


def imported(cfg: Config, meta: Meta, tracker: NullTracker) -> dict[str, Any]:
    """``gan.init``: the authors' released generator, checked against the data and the config,
    written as this stage's generator (no training); make-fakes goes on from it."""
    g, info, what = released(cfg, meta)
    info = {**info, "step": 0, "source": cfg.gan.init}
    for key, which in (("gan_last", "last"), ("gan", "best")):
        store.save_gan_generator(g, at(cfg, key), {**info, "which": which})
    g_labels, shown = watch_labels(meta, 12)
    imgs = sample(g, g_labels, cfg.gan.z_dim, torch.Generator().manual_seed(0))
    save_grid(at(cfg, "gan_samples"), imgs, shown, meta.task, meta.classes)
    tracker.set_tags({"cgankd.gan_init": cfg.gan.init})
    print(f"train-gan: loaded {cfg.gan.init} ({what}), not trained -> {at(cfg, 'gan_dir')}")
    return {"generator": str(at(cfg, "gan")), "iterations": 0, "stop": "gan.init", "minutes": 0.0}


def watched(cfg: Config, meta: Meta, device: Any, tracker: NullTracker, stop: Stop,
            minutes: dict[int, float]) -> tuple[Watch | None, float]:
    """The watch on the teacher's label score of fixed fakes and its reference (the teacher's own
    validation metric); none when ``gan.score_every`` is 0."""
    if cfg.gan.score_every <= 0:
        return None, float("nan")
    teacher = store.load(at(cfg, "teacher"), "image_model", device, "train-teacher")
    reference = teacher_metric(cfg, meta)
    return make_watch(cfg, meta, teacher, tracker, reference, stop, minutes), reference


def label_embedding(cfg: Config, regression: bool, images: np.ndarray, labels: np.ndarray, device: Any,
                    tracker: NullTracker) -> Any:
    """The improved CcGAN's label embedding (``gan.ccgan.embedding: y2h``), trained first; else None."""
    if not regression or cfg.gan.ccgan.embedding != "y2h":
        return None
    from cgankd.gan.label_embed import train_label_embedding

    c = cfg.gan.ccgan
    y2h, fit = train_label_embedding(images, labels, cfg.gan.embed_dim, c, cfg.seed + 9, device)
    tracker.log_metrics(fit)
    print(f"train-gan: label embedding (y2h) trained: x2y MSE {fit['embed_x2y_mse']:.4f}, y2h round trip MSE "
          f"{fit['embed_y2h_mse']:.5f} (labels scaled to [0, 1])")
    return y2h


def run(cfg: Config, tracker: NullTracker | None = None, stop_after: int | None = None,
        clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    tracker = tracker or NullTracker()
    rt = setup(cfg, 1)
    data = prepared(cfg)
    meta, train = data.meta, data["train"]
    if cfg.gan.init:
        return imported(cfg, meta, tracker)
    regression = not task_of(meta.task).categorical
    num_classes = None if regression else meta.num_classes
    labels = meta.scale(train.labels) if regression else train.labels
    tracker.log_params({f"gan.{k}": v for k, v in make_condition(cfg.gan, labels, num_classes).describe().items()})
    stop, minutes = Stop(cfg.gan.iterations, cfg.gan.max_minutes, clock), {}
    watch, reference = watched(cfg, meta, rt.device, tracker, stop, minutes)
    y2h = label_embedding(cfg, regression, train.images, labels, rt.device, tracker)
    g, history = train_gan(cfg.gan, train.images, labels, num_classes, cfg.seed + 1,
                           at(cfg, "gan_checkpoint"), log=lambda s, row: tracker.log_metrics(row, step=s),
                           stop_after=stop_after, runtime=rt, watch=watch, stop=stop, y2h=y2h)
    if not distributed.is_main():  # torchrun: rank 0 writes the outputs
        return {}
    return report(cfg, meta, g, history, watch, reference, stop, minutes, tracker)


def report(cfg: Config, meta: Meta, g: torch.nn.Module, history: list[dict[str, float]], watch: Watch | None,
           reference: float, stop: Stop, minutes: dict[int, float], tracker: NullTracker) -> dict[str, Any]:
    """The last and the kept generator, the history, the quality curve and its picture, the samples."""
    steps = history[-1]["step"] if history else 0
    info = generator_info(cfg, meta, None if not task_of(meta.task).categorical else meta.num_classes)
    write_history(at(cfg, "gan_history"), history)
    store.save_gan_generator(g, at(cfg, "gan_last"), {**info, "step": steps, "which": "last"})
    best = g
    result: dict[str, Any] = {"generator": str(at(cfg, "gan")), "iterations": steps, "stop": stop.reason,
                              "minutes": round(stop.seconds / 60.0, 2)}
    if watch is not None and watch.scores:
        best_step, best_score = watch.kept  # the confirming score: not the lucky check that made it a candidate
        if watch.best_state is not None and best_step != steps:
            best = copy.deepcopy(g)
            best.load_state_dict(watch.best_state)
        write_text(at(cfg, "gan_quality"), curve_csv(watch.scores, meta.task, reference, minutes, stop.reason,
                                                     watch.confirmed))
        unit = "teacher accuracy on fakes (%)" if task_of(meta.task).categorical else (
            f"teacher MAE on fakes ({meta.label_unit or 'label units'})")
        figures.label_score_curve([s for s, _ in watch.scores], [v for _, v in watch.scores], unit,
                                  at(cfg, "gan_quality_plot"))
        result.update({"label_score": watch.scores[-1][1], "best_label_score": best_score, "best_step": best_step,
                       "best_relative_score": relative_score(best_score, reference, watch.higher_is_better)})
        tracker.log_metrics({"gan_best_label_score": best_score, "gan_iterations_run": steps,
                             "gan_best_relative_score": result["best_relative_score"]})
    used = result.get("best_step", steps)
    store.save_gan_generator(best, at(cfg, "gan"), {**info, "step": used, "which": "best"})
    tracker.set_tags({"cgankd.gan_stop": stop.reason or "", "cgankd.gan_generator_step": str(used)})
    g_labels, shown = watch_labels(meta, 12)  # 12 per class, or at each of 10 labels across the range
    imgs = sample(best, g_labels, cfg.gan.z_dim, torch.Generator().manual_seed(0))
    save_grid(at(cfg, "gan_samples"), imgs, shown, meta.task, meta.classes)
    last = history[-1] if history else {}
    score = (f", label score {result['label_score']:.2f}; fakes from the best EMA generator "
             f"(iteration {result['best_step']}, {result['best_relative_score']:.2f} of the teacher's on "
             f"confirming fakes)"
             if "label_score" in result else "")
    print(f"train-gan: {stop.describe(steps)} ({result['minutes']:.1f} min), last loss_d "
          f"{last.get('loss_d', float('nan')):.3f} loss_g {last.get('loss_g', float('nan')):.3f}{score} -> "
          f"{at(cfg, 'gan_dir')}")
    return result
