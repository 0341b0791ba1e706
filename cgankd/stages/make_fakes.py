"""make-fakes: generate per class (or per label on a grid), filter with the teacher, adjust labels."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cgankd.config import Config
from cgankd.data.prepared import Meta
from cgankd.data.preview import save_grid
from cgankd.errors import CgankdError
from cgankd.fakes.make import FakeSet, label_grid, make_class_fakes, make_regression_fakes
from cgankd.gan.biggan import Generator
from cgankd.io import atomic_path, write_json, write_text
from cgankd.stages.common import load_model, prepared, setup
from cgankd.stages.registry import STAGES
from cgankd.tracking import NullTracker


def load_generator(path: Path) -> Generator:
    state = torch.load(path, map_location="cpu", weights_only=False)
    gan = state["gan"]
    g = Generator(state["num_classes"], state["resolution"], state["channels"], gan["z_dim"],
                  gan["g_ch"], gan["embed_dim"])
    g.load_state_dict(state["state_dict"])
    return g.eval()


MAKERS = {"classification": make_class_fakes, "regression": make_regression_fakes}


def score_histogram(ce: np.ndarray, kept: np.ndarray, bins: int = 40) -> str:
    """CSV for `dvc plots`: the teacher's score (CE, or |error| scaled to [0, 1]) of the burn-in
    fakes and of the kept ones."""
    hi = float(np.quantile(ce, 0.99)) if len(ce) else 1.0
    edges = np.linspace(0.0, max(hi, 1e-3), bins + 1)
    a, _ = np.histogram(np.clip(ce, 0, hi), edges)
    b, _ = np.histogram(np.clip(kept, 0, hi), edges)
    buf = io.StringIO()
    buf.write("score,burn_in,kept\n")
    for e, x, y in zip(edges[:-1], a, b, strict=True):
        buf.write(f"{e:.4f},{int(x)},{int(y)}\n")
    return buf.getvalue()


def summary(fs: FakeSet, meta: Meta, rho: float, target: int) -> dict[str, Any]:
    """``n_groups_short``: classes / grid labels that got fewer than ``target`` fakes within
    ``filter.max_rounds`` rounds."""
    stats: dict[str, Any] = {"n_fakes": int(len(fs.labels)), "n_groups_short": int(np.sum(
                                 np.bincount(fs.group, minlength=len(fs.generated)) < target)), "rho": rho,
                             "kept_fraction": float(len(fs.labels) / max(fs.generated.sum(), 1))}
    if meta.task == "classification":
        stats["relabelled"] = int((fs.labels != fs.assigned).sum())
        stats["burn_in_teacher_acc"] = float(100 * np.mean(fs.burn_in_score < np.log(2)))  # p(y) > 0.5
        return stats
    width = meta.label_range[1] - meta.label_range[0]
    stats["burn_in_teacher_mae"] = float(fs.burn_in_score.mean() * width)
    stats["kept_teacher_mae"] = float(fs.score.mean() * width) if len(fs.score) else float("nan")
    stats["cutoff"] = float(fs.cutoffs[0] * width)
    stats["mean_label_shift"] = float(np.abs(fs.labels - fs.assigned).mean()) if len(fs.labels) else 0.0
    return stats


def group_counts(fs: FakeSet, meta: Meta, n_bins: int = 10) -> dict[str, dict[str, float]]:
    """Kept / generated per class, or per tenth of the label range."""
    if meta.task == "classification":
        return {name: {"kept": int((fs.group == c).sum()), "generated": int(fs.generated[c]),
                       "dropped": int(fs.generated[c] - (fs.group == c).sum()),
                       "ce_cutoff": float(fs.cutoffs[c])} for c, name in enumerate(meta.classes)}
    n = len(fs.generated)
    edges = np.linspace(0, n, n_bins + 1).round().astype(int)
    lab = meta.unscale(label_grid(n))
    out = {}
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        kept = int(((fs.group >= a) & (fs.group < b)).sum())
        gen = int(fs.generated[a:b].sum())
        out[f"{lab[a]:.4g}-{lab[b - 1]:.4g}"] = {"kept": kept, "generated": gen, "dropped": gen - kept}
    return out


@STAGES.register("make-fakes")
def run(cfg: Config, tracker: NullTracker | None = None) -> dict[str, Any]:
    tracker = tracker or NullTracker()
    setup(cfg, 2)
    data = prepared(cfg)
    meta = data.meta
    g = load_generator(cfg.path("gan", "generator.pt"))
    if (g.num_classes is None) != (meta.task == "regression"):
        raise CgankdError(str(cfg.path("gan", "generator.pt")), f"was trained for another task than {meta.task}; "
                          "re-run train-gan")
    teacher = load_model(cfg.path("teacher", "model.pt"))
    fs = MAKERS[meta.task](cfg, g, teacher, meta, cfg.seed + 2)
    out = cfg.path("fakes")
    with atomic_path(out / "fakes.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, fake_images=fs.images, fake_labels=fs.labels, assigned_labels=fs.assigned,
                     teacher_score=fs.score)
    target = cfg.fakes.n_per_class if meta.task == "classification" else cfg.fakes.n_per_label
    stats = summary(fs, meta, cfg.rho, target)
    write_json(out / "counts.json", group_counts(fs, meta))
    write_json(cfg.path("metrics", "fakes.json"), stats)
    write_text(cfg.path("plots", "fakes_score_hist.csv"), score_histogram(fs.burn_in_score, fs.score))
    grid = save_grid(out / "grid.png", fs.images, fs.assigned, meta.task, meta.classes)
    tracker.log_params({"fakes.rho_used": cfg.rho, "fakes.adjust_used": cfg.adjust_labels})
    tracker.log_metrics(stats)
    tracker.log_artifact(grid, "plots")
    tracker.log_artifact(cfg.path("plots", "fakes_score_hist.csv"), "plots")
    tracker.log_artifact(out / "counts.json")
    print("make-fakes:", json.dumps(stats))
    return stats
