"""train-gan: the class-conditional GAN (classification) or the CcGAN (regression) on the real
training set; resumes after a crash."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cgankd import distributed, figures, store
from cgankd.config import Config
from cgankd.data.prepared import Meta
from cgankd.data.preview import save_grid
from cgankd.gan.conditions import make_condition
from cgankd.gan.train import sample, train_gan
from cgankd.gan.watch import Watch
from cgankd.io import write_text
from cgankd.quality.scores import label_score
from cgankd.stages.common import prepared, setup, write_history
from cgankd.stages.registry import STAGES
from cgankd.tracking import NullTracker
from cgankd.train.evaluate import predict

SHOWN = 8  # fakes per class / label row in each progress grid


def watch_labels(meta: Meta, n: int) -> tuple[np.ndarray, np.ndarray]:
    """G's labels of the fixed check batch and the same labels in the label's unit: ``n`` per
    class, or ``n`` at each of 10 labels across the range."""
    if meta.task == "classification":
        y = np.repeat(np.arange(meta.num_classes), n)
        return y, y
    scaled = np.repeat(np.linspace(0.0, 1.0, 10), n).astype(np.float32)
    return scaled, meta.unscale(scaled)


def make_watch(cfg: Config, meta: Meta, teacher: torch.nn.Module, out: Path, tracker: NullTracker) -> Watch:
    """The teacher's label score on the same fakes (fixed z) at every check, logged with a grid."""
    n = cfg.gan.score_n
    g_labels, labels = watch_labels(meta, n)
    shown = np.concatenate([np.arange(i, i + min(SHOWN, n)) for i in range(0, len(labels), n)])

    def score(step: int, g: torch.nn.Module) -> float:
        imgs = sample(g, g_labels, cfg.gan.z_dim, torch.Generator().manual_seed(cfg.seed + 7))
        value = label_score(predict(teacher, imgs), labels, meta)
        tracker.log_metrics({"gan_label_score": value}, step=step)
        path = save_grid(out / "progress" / f"step_{step:06d}.png", imgs[shown], labels[shown], meta.task,
                         meta.classes, per_row=SHOWN)
        tracker.log_artifact(path, "samples")
        return value

    return Watch(score, cfg.gan.score_every, cfg.gan.stop_patience, meta.task == "classification")


@STAGES.register("train-gan")
def run(cfg: Config, tracker: NullTracker | None = None, stop_after: int | None = None) -> dict[str, Any]:
    tracker = tracker or NullTracker()
    rt = setup(cfg, 1)
    layout = store.Layout(cfg)
    data = prepared(cfg)
    meta, train = data.meta, data["train"]
    regression = meta.task == "regression"
    num_classes = None if regression else meta.num_classes
    labels = meta.scale(train.labels) if regression else train.labels
    tracker.log_params({f"gan.{k}": v for k, v in make_condition(cfg.gan, labels, num_classes).describe().items()})
    out = layout.gan.parent
    watch = None
    if cfg.gan.score_every > 0:
        teacher = store.load(layout.teacher, "image_model", rt.device, "train-teacher")
        watch = make_watch(cfg, meta, teacher, out, tracker)
    g, history = train_gan(cfg.gan, train.images, labels, num_classes, cfg.seed + 1,
                           layout.gan_checkpoint, log=lambda s, row: tracker.log_metrics(row, step=s),
                           stop_after=stop_after, runtime=rt, watch=watch)
    if not distributed.is_main():  # torchrun: rank 0 writes the outputs
        return {}
    store.save_gan_generator(g, layout.gan, {"num_classes": num_classes, "task": meta.task,
                                             "resolution": meta.resolution, "channels": meta.channels,
                                             "label_range": meta.label_range, "gan": asdict(cfg.gan)})
    write_history(out / "history.csv", history)
    result: dict[str, Any] = {"generator": str(layout.gan), "iterations": history[-1]["step"] if history else 0}
    if watch is not None and watch.scores:
        key = "acc" if meta.task == "classification" else "mae"
        write_text(out / "quality.csv", "step,label_score_" + key + "\n" +
                   "".join(f"{s},{v:.4f}\n" for s, v in watch.scores))
        tracker.log_artifact(out / "quality.csv")
        unit = "teacher accuracy on fakes (%)" if meta.task == "classification" else (
            f"teacher MAE on fakes ({meta.label_unit or 'label units'})")
        tracker.log_artifact(figures.label_score_curve([s for s, _ in watch.scores], [v for _, v in watch.scores],
                                                       unit, out / "quality.png"), "plots")
        best = watch.best
        result.update({"label_score": watch.scores[-1][1], "best_label_score": best[1], "best_step": best[0]})
        tracker.log_metrics({"gan_best_label_score": best[1], "gan_iterations_run": result["iterations"]})
    g_labels, shown = watch_labels(meta, 12)  # 12 per class, or at each of 10 labels across the range
    imgs = sample(g, g_labels, cfg.gan.z_dim, torch.Generator().manual_seed(0))
    grid = save_grid(out / "samples.png", imgs, shown, meta.task, meta.classes)
    tracker.log_artifact(grid, "plots")
    last = history[-1] if history else {}
    score = f", label score {result['label_score']:.2f}" if "label_score" in result else ""
    print(f"train-gan: {result['iterations']} iterations, last loss_d {last.get('loss_d', float('nan')):.3f} "
          f"loss_g {last.get('loss_g', float('nan')):.3f}{score} -> {out}")
    return result
