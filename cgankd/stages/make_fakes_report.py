"""make-fakes' report: the fake set's numbers (``metrics/fakes.json``: kept, acceptance, quality per
step, the verdict), per-group counts, the score histogram and the quality pictures, and what its
MLflow run shows."""

from __future__ import annotations

import io
import json
import re
import sys
from typing import Any

import numpy as np

from cgankd.base import figures
from cgankd.base.io import write_json, write_text
from cgankd.base.tracker import NullTracker
from cgankd.config import Config
from cgankd.data.prepared import Meta
from cgankd.data.preview import save_grid
from cgankd.fakes.make import FakeSet, label_grid
from cgankd.quality.scores import windows
from cgankd.quality.verdict import Verdict
from cgankd.stages.common import at
from cgankd.task import task_of


def score_counts(ce: np.ndarray, kept: np.ndarray, bins: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin left edges and counts of the teacher's score (CE, or |error| scaled to [0, 1]) of the
    burn-in fakes and of the kept ones, up to the burn-in's 99th percentile."""
    hi = float(np.quantile(ce, 0.99)) if len(ce) else 1.0
    edges = np.linspace(0.0, max(hi, 1e-3), bins + 1)
    a, _ = np.histogram(np.clip(ce, 0, hi), edges)
    b, _ = np.histogram(np.clip(kept, 0, hi), edges)
    return edges[:-1], a, b


def score_histogram(ce: np.ndarray, kept: np.ndarray, bins: int = 40) -> str:
    """CSV for `dvc plots`: ``score_counts`` as score,burn_in,kept."""
    buf = io.StringIO()
    buf.write("score,burn_in,kept\n")
    for e, x, y in zip(*score_counts(ce, kept, bins), strict=True):
        buf.write(f"{e:.4f},{int(x)},{int(y)}\n")
    return buf.getvalue()


def summary(fs: FakeSet, meta: Meta, rho: float, target: int) -> dict[str, Any]:
    """``n_groups_short``: classes / grid labels that got fewer than ``target`` fakes within
    ``filter.max_rounds`` rounds (made before the filter with ``filter.burn_in_from: whole``)."""
    per_group = fs.made if fs.made is not None else np.bincount(fs.group, minlength=len(fs.generated))
    stats: dict[str, Any] = {"n_fakes": int(len(fs.labels)), "n_groups_short": int(np.sum(per_group < target)),
                             "rho": rho,
                             "kept_fraction": float(len(fs.labels) / max(fs.generated.sum(), 1)),
                             "acceptance_rate": fs.acceptance_rate}
    if task_of(meta.task).categorical:
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
    """Kept / generated per class, or per tenth of the label range; with cDR-RS also the fakes
    offered to rejection sampling, accepted by it, and the acceptance rate."""
    if task_of(meta.task).categorical:
        spans = [(c, c + 1) for c in range(meta.num_classes)]
        names = list(meta.classes)
    else:
        n = len(fs.generated)
        edges = np.linspace(0, n, n_bins + 1).round().astype(int)
        lab = meta.unscale(label_grid(n))
        spans = list(zip(edges[:-1], edges[1:], strict=True))
        names = [f"{lab[a]:.4g}-{lab[b - 1]:.4g}" for a, b in spans]
    out: dict[str, dict[str, float]] = {}
    for name, (a, b) in zip(names, spans, strict=True):
        kept = int(((fs.group >= a) & (fs.group < b)).sum())
        gen = int(fs.generated[a:b].sum())
        row: dict[str, float] = {"kept": kept, "generated": gen, "dropped": gen - kept}
        if task_of(meta.task).categorical:
            row["ce_cutoff"] = float(fs.cutoffs[a])
        if fs.offered is not None and fs.accepted is not None:
            off, acc = int(fs.offered[a:b].sum()), int(fs.accepted[a:b].sum())
            row.update({"offered": off, "accepted": acc, "acceptance": acc / off if off else float("nan")})
        out[name] = row
    return out


def acceptance_metrics(counts: dict[str, dict[str, float]]) -> dict[str, float]:
    """``acceptance.<class or label window>`` for MLflow, and the lowest of them."""
    rates = {re.sub(r"[^A-Za-z0-9_.-]", "_", f"acceptance.{k}"): v["acceptance"] for k, v in counts.items()
             if np.isfinite(v.get("acceptance", float("nan")))}
    if rates:
        rates["acceptance_min_group"] = min(rates.values())
    return rates


def group_names(cfg: Config, meta: Meta) -> list[str]:
    if task_of(meta.task).categorical:
        return list(meta.classes)
    return [f"{v:.4g}" for v in meta.unscale(windows(cfg.quality.n_windows, cfg.quality.window))]


def quality_csv(names: list[str], per_group: dict[str, list[float]], task: str) -> str:
    head = task_of(task).group_column + "," + ",".join(per_group)
    rows = [f"{n}," + ",".join(f"{per_group[s][i]:.4f}" for s in per_group) for i, n in enumerate(names)]
    return "\n".join([head, *rows]) + "\n"


def report(cfg: Config, meta: Meta, fs: FakeSet, dre_stats: dict[str, float], table: dict[str, dict[str, float]],
           per_group: dict[str, list[float]], verdict: Verdict, tracker: NullTracker) -> dict[str, Any]:
    """Writes the fakes' metrics, counts, quality table, histogram and pictures; logs and prints them."""
    stats = summary(fs, meta, cfg.rho, task_of(meta.task).fakes_per_group(cfg.fakes))
    stats.update(dre_stats)
    stats["ratio_max"] = fs.ratio_max
    for step, vals in table.items():  # e.g. quality_raw_fid, quality_final_intra_fid
        stats.update({f"quality_{step}_{k}": v for k, v in vals.items()})
    stats.update(verdict.metrics())
    counts = group_counts(fs, meta)
    stats.update(acceptance_metrics(counts))
    write_json(at(cfg, "fakes_counts"), counts)
    write_json(at(cfg, "fakes_quality"), table)
    write_json(at(cfg, "fakes_metrics"), stats)
    write_text(at(cfg, "fakes_score_csv"), score_histogram(fs.burn_in_score, fs.score))
    what = task_of(meta.task).score_words
    figures.score_histogram(*score_counts(fs.burn_in_score, fs.score), f"teacher's score of a fake: {what}",
                            at(cfg, "fakes_score_plot"))
    write_text(at(cfg, "fakes_intra_fid_csv"), quality_csv(group_names(cfg, meta), per_group, meta.task))
    unit = "acc %" if task_of(meta.task).categorical else f"MAE {meta.label_unit or ''}".strip()
    panels = [("fid", "FID (lower is better)"), ("intra_fid", "Intra-FID"),
              ("label_score", f"label score, teacher {unit}"), ("diversity", "diversity (real = 1)")]
    figures.quality_bars(table, panels, at(cfg, "fakes_quality_plot"))
    at(cfg, "fakes_grid").unlink(missing_ok=True)  # an earlier run's grid is not of these fakes
    if len(fs.images) == 0:
        print(f"make-fakes: warning: no fake was kept within subsample.max_draw_factor="
              f"{cfg.subsample.max_draw_factor}; cgankd trains on real data only", file=sys.stderr)
    else:
        save_grid(at(cfg, "fakes_grid"), fs.images, fs.assigned, meta.task, meta.classes)
    tracker.log_params({"fakes.rho_used": cfg.rho, "fakes.adjust_used": cfg.adjust_labels,
                        "fakes.subsample_used": cfg.subsample_fakes})
    tracker.log_metrics({k: v for k, v in stats.items() if isinstance(v, (int, float)) and np.isfinite(v)})
    tracker.set_tags({"cgankd.fakes_verdict": verdict.full})
    print("make-fakes:", json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in stats.items()
                                     if k != "verdict"}))
    print(f"make-fakes: {verdict.full}")
    return stats
