"""evaluate's report: metrics.json and the DVC headline, report.md (the comparison table, the
fakes' verdict, whether cGAN-KD helped), the per-class / per-label CSV and the picture: the exported
student's confusion matrix, or every model's MAE across the label range."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cgankd.base import figures
from cgankd.base.io import write_json, write_text
from cgankd.base.tracker import NullTracker
from cgankd.config import Config
from cgankd.data.prepared import Prepared
from cgankd.kd import label
from cgankd.stages.common import at
from cgankd.task import task_of


@dataclass(frozen=True)
class Compared:
    """What evaluate computed: each model's metrics (skipped students apart), the fakes' and the
    export's records, metrics.json's numbers, the int8 twin's scores, each model's test outputs."""

    rows: dict[str, dict[str, Any]]
    skipped: list[str]
    fakes: dict[str, Any]
    parity: dict[str, Any]
    out: dict[str, Any]
    int8: dict[str, Any] | None
    preds: dict[str, np.ndarray]


def confusion(pred: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    cm = np.zeros((n, n), np.int64)
    np.add.at(cm, (labels, pred), 1)
    return cm


def per_label(preds: dict[str, np.ndarray], data: Prepared, bins: int = 30) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Rows: classes (accuracy %) or label bins (MAE in the label's unit); one column per model.
    Returns the row names, their x positions and the table."""
    meta, labels = data.meta, data["test"].labels
    if task_of(meta.task).categorical:
        rows = [np.flatnonzero(labels == c) for c in range(meta.num_classes)]
        score = {k: (v.argmax(1) == labels) * 100.0 for k, v in preds.items()}
        names, xs = list(meta.classes), np.arange(meta.num_classes, dtype=float)
    else:
        lo, hi = meta.label_range
        edges = np.linspace(lo, hi, bins + 1)
        which = np.clip(np.digitize(labels, edges) - 1, 0, bins - 1)
        rows = [np.flatnonzero(which == b) for b in range(bins)]
        score = {k: np.abs(meta.unscale(v.reshape(-1)) - labels) for k, v in preds.items()}
        xs = (edges[:-1] + edges[1:]) / 2
        names = [f"{x:.4g}" for x in xs]
    table = np.array([[score[k][r].mean() if len(r) else np.nan for k in preds] for r in rows])
    return names, xs, table


def per_label_csv(names: list[str], table: np.ndarray, models: list[str], task: str) -> str:
    head = task_of(task).label_column + "," + ",".join(models)
    lines = [head] + [f"{n}," + ",".join(f"{v:.4f}" for v in row) for n, row in zip(names, table, strict=True)]
    return "\n".join(lines) + "\n"


def safe(method: str) -> str:
    """A method name as an MLflow metric key (no '+')."""
    return method.replace("+", "_")


def verdict(task: str, nokd: float, cgankd: float | None, skipped: bool = False) -> str:
    if skipped:
        return "cGAN-KD was skipped: the fakes are too weak (student.skip_weak_fakes)."
    if cgankd is None:
        return "cGAN-KD was not run (student.methods has no cgankd)."
    diff = cgankd - nokd
    unit = task_of(task).metric_words
    helped = task_of(task).better(diff, 0.0)
    word = "helped" if helped else "did not help"
    return f"cGAN-KD {word}: {diff:+.2f} {unit} against NOKD on the test split (one seed)."


def headline(rows: dict[str, dict[str, Any]], k: str, fakes: dict[str, Any]) -> dict[str, Any]:
    """The one DVC metrics file, narrow enough for `dvc metrics show` / `dvc exp show` in a terminal: each
    model's test metric, each KD method's difference to NOKD, the fakes kept and their relative score.
    DVC sorts the columns by name: test_<metric>.*, test_<metric>_vs_nokd.*, used_fakes.*."""
    test = {safe(name): m[f"test_{k}"] for name, m in rows.items()}
    out: dict[str, Any] = {f"test_{k}": test}
    if "nokd" in test:
        out[f"test_{k}_vs_nokd"] = {m: test[m] - test["nokd"] for m in test if m not in ("teacher", "nokd")}
    if "verdict" in fakes:
        out["used_fakes"] = {"kept": fakes["n_fakes"], "score": fakes["raw_relative_label_score"]}
    return {key: v for key, v in out.items() if v}


def report_lines(cfg: Config, data: Prepared, c: Compared) -> list[str]:
    """report.md: the table of every model, then the verdict lines."""
    task, k = data.meta.task, task_of(data.meta.task).metric
    rows, fakes, int8 = c.rows, c.fakes, c.int8
    extra = ("test_mae_seen", "test_mae_unseen") if not task_of(task).categorical else ()
    unit = task_of(task).unit(data.meta.label_unit)
    unit = unit if unit == "%" else f" {unit}".rstrip()
    cols = [f"val {k}", f"test {k} (best val)", f"test {k} (last)"]
    cols += ["test mae, seen labels", "test mae, unseen labels"] if extra else []
    lines = [f"# cgankd: {data.meta.source} ({task}), seed {cfg.seed}", "",
             "| model | params | " + " | ".join(cols) + " |", "|---|---:|" + "---:|" * len(cols)]
    for name, m in rows.items():
        who = f"teacher {cfg.teacher.arch}" if name == "teacher" else f"{label(name)} {cfg.student.arch}"
        vals = [m.get(key, float("nan")) for key in (f"val_{k}", f"test_{k}", f"test_last_{k}", *extra)]
        lines.append(f"| {who} | {m['params']:,} | " + " | ".join(f"{v:.2f}{unit}" for v in vals) + " |")
    cg = rows["cgankd"][f"test_{k}"] if "cgankd" in rows else None
    sc = cfg.student
    start = "NOKD's last checkpoint" if sc.finetune_from == "nokd-last" else "the NOKD student"
    budget = f"{sc.epochs} epochs over real + fakes" if sc.epochs else f"{sc.finetune_steps} more steps"
    caveat = ([f"cGAN-KD was fine-tuned from {start} for {budget}; "
               "`-S student.fake_ratio=0` trains the same fine-tuning on real data alone, the control "
               "that separates the fakes' effect from the extra steps."]
              if cg is not None and cfg.student.mode == "finetune" else [])
    lines += [f"| {label(m)} {cfg.student.arch} | skipped: the fakes are too weak (below) |" for m in c.skipped]
    lines += ["", *([fakes["verdict"] + "."] if "verdict" in fakes else []),
              verdict(task, rows["nokd"][f"test_{k}"], cg, "cgankd" in c.skipped), *caveat,
              f"Exported: the {c.parity['method']} student (best validation {k}); the register stage puts it in "
              "the MLflow registry when tracking is on.",
              *([f"int8 twin: test {k} {int8[f'int8_test_{k}']:.2f}{unit} against the fp32 ONNX model's "
                 f"{int8[f'fp32_test_{k}']:.2f}{unit}: {int8['why']}; "
                 f"{'registered with it' if int8['registrable'] else 'not registered'}."] if int8 else []), ""]
    return lines


def report(cfg: Config, data: Prepared, c: Compared, tracker: NullTracker) -> None:
    """Writes metrics.json, headline.json, report.md, the per-label CSV and the picture; logs the numbers."""
    task, k = data.meta.task, task_of(data.meta.task).metric
    write_json(at(cfg, "metrics"), c.out)
    write_json(at(cfg, "headline"), headline(c.rows, k, c.fakes))
    lines = report_lines(cfg, data, c)
    write_text(at(cfg, "report"), "\n".join(lines))
    names, xs, table = per_label(c.preds, data)
    write_text(at(cfg, "per_label"), per_label_csv(names, table, list(c.preds), task))
    picture = at(cfg, "evaluation_plot")
    if task_of(task).categorical:
        method = c.parity["method"]
        cm = confusion(c.preds[method].argmax(1), data["test"].labels, data.meta.num_classes)
        figures.confusion(cm, data.meta.classes, f"test split, exported {method} student", picture)
    else:
        figures.mae_by_label(xs, table, list(c.preds), data.meta.label_unit, picture)
    tracker.log_metrics({key: v for key, v in c.out.items() if isinstance(v, (int, float))})
    print("\n".join(lines))
