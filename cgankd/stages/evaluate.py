"""evaluate: the teacher / NOKD / cGAN-KD comparison as metrics JSON and markdown, and a
confusion matrix of the exported student."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from cgankd.config import Config
from cgankd.io import atomic_path, read_json, write_json, write_text
from cgankd.stages.common import load_model, metric_key, prepared
from cgankd.stages.registry import STAGES
from cgankd.tracking import NullTracker
from cgankd.train.evaluate import predict


def confusion(pred: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    cm = np.zeros((n, n), np.int64)
    np.add.at(cm, (labels, pred), 1)
    return cm


def confusion_png(cm: np.ndarray, classes: list[str], path) -> None:
    n, cell, left, top = len(classes), 34, 70, 70
    img = Image.new("RGB", (left + n * cell + 10, top + n * cell + 10), "white")
    d = ImageDraw.Draw(img)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    for i in range(n):
        d.text((2, top + i * cell + cell // 2 - 5), classes[i][:10], fill="black")
        d.text((left + i * cell + 2, top - 14 - (i % 2) * 12), classes[i][:6], fill="black")
        for j in range(n):
            v = int(255 * (1 - norm[i, j]))
            d.rectangle([left + j * cell, top + i * cell, left + (j + 1) * cell - 1,
                         top + (i + 1) * cell - 1], fill=(v, v, 255))
            d.text((left + j * cell + 4, top + i * cell + 11), str(cm[i, j]),
                   fill="white" if v < 120 else "black")
    d.text((left, 4), "true (rows) vs predicted (columns)", fill="black")
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def verdict(task: str, nokd: float, cgankd: float | None) -> str:
    if cgankd is None:
        return "cGAN-KD was not run (student.methods has no cgankd)."
    diff = cgankd - nokd
    unit = "points of accuracy" if task == "classification" else "MAE"
    helped = diff > 0 if task == "classification" else diff < 0
    word = "helped" if helped else "did not help"
    return f"cGAN-KD {word}: {diff:+.2f} {unit} against NOKD on the test split (one seed)."


@STAGES.register("evaluate")
def run(cfg: Config, tracker: NullTracker | None = None) -> dict[str, Any]:
    tracker = tracker or NullTracker()
    data = prepared(cfg)
    task, k = data.meta.task, metric_key(data.meta.task)
    teacher = read_json(cfg.path("metrics", "teacher.json"))
    rows = {"teacher": teacher}
    rows.update({m: read_json(cfg.path("metrics", f"student_{m}.json")) for m in cfg.student.methods})
    parity = read_json(cfg.path("export", "parity.json"))
    out: dict[str, Any] = {}
    for name, m in rows.items():
        for split in ("val", "test", "test_last"):
            out[f"{name}_{split}_{k}"] = m[f"{split}_{k}"]
        out[f"{name}_params"] = m["params"]
    if "cgankd" in rows:
        out[f"cgankd_minus_nokd_test_{k}"] = rows["cgankd"][f"test_{k}"] - rows["nokd"][f"test_{k}"]
    out["selected"] = parity["method"]
    write_json(cfg.path("metrics.json"), out)
    unit = "%" if task == "classification" else f" {data.meta.label_unit}".rstrip()
    lines = [f"# cgankd: {data.meta.source} ({task}), seed {cfg.seed}", "",
             f"| model | params | val {k} | test {k} (best val) | test {k} (last) |",
             "|---|---:|---:|---:|---:|"]
    for name, m in rows.items():
        label = {"teacher": f"teacher {cfg.teacher.arch}", "nokd": f"NOKD {cfg.student.arch}",
                 "cgankd": f"cGAN-KD {cfg.student.arch}"}[name]
        lines.append(f"| {label} | {m['params']:,} | {m[f'val_{k}']:.2f}{unit} | "
                     f"{m[f'test_{k}']:.2f}{unit} | {m[f'test_last_{k}']:.2f}{unit} |")
    cg = rows["cgankd"][f"test_{k}"] if "cgankd" in rows else None
    lines += ["", verdict(task, rows["nokd"][f"test_{k}"], cg),
              f"Exported and registered: the {parity['method']} student (best validation {k}).", ""]
    write_text(cfg.path("report.md"), "\n".join(lines))
    if task == "classification":
        student = load_model(cfg.path("students", parity["method"], "model.pt"))
        pred = predict(student, data["test"].images).argmax(1)
        cm = confusion(pred, data["test"].labels, data.meta.num_classes)
        confusion_png(cm, data.meta.classes, cfg.path("plots", "confusion.png"))
        tracker.log_artifact(cfg.path("plots", "confusion.png"), "plots")
    tracker.log_metrics({k2: v for k2, v in out.items() if isinstance(v, (int, float))})
    tracker.log_artifact(cfg.path("report.md"))
    print("\n".join(lines))
    return out
