"""make-fakes: generate per class, filter with the teacher, optionally adjust labels."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cgankd.config import Config
from cgankd.data.preview import save_grid
from cgankd.fakes.make import make_class_fakes
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


def ce_histogram(ce: np.ndarray, kept: np.ndarray, bins: int = 40) -> str:
    """CSV for `dvc plots`: the burn-in CE distribution and the kept fakes' CE."""
    hi = float(np.quantile(ce, 0.99)) if len(ce) else 1.0
    edges = np.linspace(0.0, max(hi, 1e-3), bins + 1)
    a, _ = np.histogram(np.clip(ce, 0, hi), edges)
    b, _ = np.histogram(np.clip(kept, 0, hi), edges)
    buf = io.StringIO()
    buf.write("ce,burn_in,kept\n")
    for e, x, y in zip(edges[:-1], a, b, strict=True):
        buf.write(f"{e:.4f},{int(x)},{int(y)}\n")
    return buf.getvalue()


@STAGES.register("make-fakes")
def run(cfg: Config, tracker: NullTracker | None = None) -> dict[str, Any]:
    tracker = tracker or NullTracker()
    setup(cfg, 2)
    data = prepared(cfg)
    g = load_generator(cfg.path("gan", "generator.pt"))
    teacher = load_model(cfg.path("teacher", "model.pt"))
    n_cls = data.meta.num_classes
    fs = make_class_fakes(cfg, g, teacher, n_cls, cfg.seed + 2)
    out = cfg.path("fakes")
    with atomic_path(out / "fakes.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, fake_images=fs.images, fake_labels=fs.labels, assigned_labels=fs.assigned,
                     teacher_ce=fs.ce)
    stats = {
        "n_fakes": int(len(fs.labels)),
        "rho": cfg.filter.rho if cfg.filter.enabled else 1.0,
        "kept_fraction": float(len(fs.labels) / max(fs.generated.sum(), 1)),
        "relabelled": int((fs.labels != fs.assigned).sum()),
        "burn_in_teacher_acc": float(100 * np.mean(fs.burn_in_ce < np.log(2))),  # p(y) > 0.5
    }
    per_class = {name: {"kept": int((fs.assigned == c).sum()), "generated": int(fs.generated[c]),
                        "dropped": int(fs.generated[c] - (fs.assigned == c).sum()),
                        "ce_cutoff": float(fs.cutoffs[c])}
                 for c, name in enumerate(data.meta.classes)}
    write_json(out / "counts.json", per_class)
    write_json(cfg.path("metrics", "fakes.json"), stats)
    write_text(cfg.path("plots", "fakes_ce_hist.csv"), ce_histogram(fs.burn_in_ce, fs.ce))
    grid = save_grid(out / "grid.png", fs.images, fs.assigned, "classification", data.meta.classes)
    tracker.log_metrics(stats)
    tracker.log_artifact(grid, "plots")
    tracker.log_artifact(cfg.path("plots", "fakes_ce_hist.csv"), "plots")
    tracker.log_artifact(out / "counts.json")
    print("make-fakes:", json.dumps(stats))
    return stats
