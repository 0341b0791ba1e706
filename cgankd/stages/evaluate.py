"""evaluate: the teacher / NOKD / cGAN-KD comparison as metrics JSON and markdown, a per-class
(accuracy) or per-label (MAE) CSV of every model, and a picture: the exported student's
confusion matrix, or every model's MAE across the label range."""

from __future__ import annotations

from typing import Any

import numpy as np

from cgankd import store
from cgankd.base import figures
from cgankd.base.io import read_json, write_json, write_text
from cgankd.base.tracker import NullTracker
from cgankd.config import Config
from cgankd.data.prepared import Prepared
from cgankd.stages.common import at, prepared
from cgankd.task import task_of
from cgankd.train.evaluate import metrics, predict


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


LABELS = {"nokd": "NOKD", "cgankd": "cGAN-KD"}


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


def run(cfg: Config, tracker: NullTracker | None = None) -> dict[str, Any]:
    tracker = tracker or NullTracker()
    data = prepared(cfg)
    task, k = data.meta.task, task_of(data.meta.task).metric
    teacher = read_json(at(cfg, "teacher_metrics"))
    rows = {"teacher": teacher}
    rows.update({m: read_json(at(cfg, "student_metrics", m)) for m in cfg.student.methods})
    skipped = [m for m in list(rows) if "skipped" in rows[m]]
    for m in skipped:
        rows.pop(m)
    fakes = read_json(at(cfg, "fakes_metrics")) if cfg.uses_fakes else {}
    parity = read_json(at(cfg, "parity"))
    out: dict[str, Any] = {}
    extra = ("test_mae_seen", "test_mae_unseen") if not task_of(task).categorical else ()
    for name, m in rows.items():
        for key in (f"val_{k}", f"test_{k}", f"test_last_{k}", *extra):
            if key in m:
                out[f"{safe(name)}_{key}"] = m[key]
        out[f"{safe(name)}_params"] = m["params"]
    if "cgankd" in rows:
        out[f"cgankd_minus_nokd_test_{k}"] = rows["cgankd"][f"test_{k}"] - rows["nokd"][f"test_{k}"]
    out["selected"] = parity["method"]
    if "verdict" in fakes:  # the parent run shows it: a metric and a cgankd.fakes_verdict tag
        out.update({"fakes_relative_label_score": fakes["raw_relative_label_score"],
                    "fakes_weak": fakes["weak_fakes"], "fakes_verdict": fakes["verdict"]})
    out.update({f"{safe(m)}_skipped": 1.0 for m in skipped})
    int8 = None
    if cfg.export.int8:  # the int8 twin beside the fp32 ONNX model, on the test split (cgankd/serve/quantize.py)
        from cgankd.serve.quantize import int8_report, onnx_outputs

        test = data["test"]
        score = {p: metrics(onnx_outputs(at(cfg, key), test.images), test.labels, data.meta, "test")[f"test_{k}"]
                 for p, key in (("fp32", "onnx"), ("int8", "onnx_int8"))}
        int8 = int8_report(task, score["fp32"], score["int8"], cfg.export.int8_max_drop,
                           cfg.export.int8_max_mae_increase)
        out.update({f"onnx_fp32_test_{k}": int8[f"fp32_test_{k}"], f"onnx_int8_test_{k}": int8[f"int8_test_{k}"],
                    "int8_registrable": float(int8["registrable"]), "int8_why": int8["why"]})
    write_json(at(cfg, "metrics"), out)
    write_json(at(cfg, "headline"), headline(rows, k, fakes))
    unit = task_of(task).unit(data.meta.label_unit)
    unit = unit if unit == "%" else f" {unit}".rstrip()
    cols = [f"val {k}", f"test {k} (best val)", f"test {k} (last)"]
    cols += ["test mae, seen labels", "test mae, unseen labels"] if extra else []
    lines = [f"# cgankd: {data.meta.source} ({task}), seed {cfg.seed}", "",
             "| model | params | " + " | ".join(cols) + " |", "|---|---:|" + "---:|" * len(cols)]
    for name, m in rows.items():
        label = f"teacher {cfg.teacher.arch}" if name == "teacher" else f"{LABELS.get(name, name)} {cfg.student.arch}"
        vals = [m.get(key, float("nan")) for key in (f"val_{k}", f"test_{k}", f"test_last_{k}", *extra)]
        lines.append(f"| {label} | {m['params']:,} | " + " | ".join(f"{v:.2f}{unit}" for v in vals) + " |")
    cg = rows["cgankd"][f"test_{k}"] if "cgankd" in rows else None
    sc = cfg.student
    start = "NOKD's last checkpoint" if sc.finetune_from == "nokd-last" else "the NOKD student"
    budget = f"{sc.epochs} epochs over real + fakes" if sc.epochs else f"{sc.finetune_steps} more steps"
    caveat = ([f"cGAN-KD was fine-tuned from {start} for {budget}; "
               "`-S student.fake_ratio=0` trains the same fine-tuning on real data alone, the control "
               "that separates the fakes' effect from the extra steps."]
              if cg is not None and cfg.student.mode == "finetune" else [])
    lines += [f"| {LABELS.get(m, m)} {cfg.student.arch} | skipped: the fakes are too weak (below) |"
              for m in skipped]
    lines += ["", *([fakes["verdict"] + "."] if "verdict" in fakes else []),
              verdict(task, rows["nokd"][f"test_{k}"], cg, "cgankd" in skipped), *caveat,
              f"Exported: the {parity['method']} student (best validation {k}); the register stage puts it in "
              "the MLflow registry when tracking is on.",
              *([f"int8 twin: test {k} {int8[f'int8_test_{k}']:.2f}{unit} against the fp32 ONNX model's "
                 f"{int8[f'fp32_test_{k}']:.2f}{unit}: {int8['why']}; "
                 f"{'registered with it' if int8['registrable'] else 'not registered'}."] if int8 else []), ""]
    write_text(at(cfg, "report"), "\n".join(lines))
    dev = cfg.runtime.device
    paths = {"teacher": at(cfg, "teacher"),
             **{m: at(cfg, "student", m) for m in cfg.student.methods if m not in skipped}}
    preds = {name: predict(store.load_model(p, dev), data["test"].images) for name, p in paths.items()}
    names, xs, table = per_label(preds, data)
    write_text(at(cfg, "per_label"), per_label_csv(names, table, list(preds), task))
    picture = at(cfg, "evaluation_plot")
    if task_of(task).categorical:
        cm = confusion(preds[parity["method"]].argmax(1), data["test"].labels, data.meta.num_classes)
        figures.confusion(cm, data.meta.classes, f"test split, exported {parity['method']} student", picture)
    else:
        figures.mae_by_label(xs, table, list(preds), data.meta.label_unit, picture)
    tracker.log_artifact(picture, "plots")
    tracker.log_artifact(at(cfg, "per_label"), "plots")
    tracker.log_metrics({k2: v for k2, v in out.items() if isinstance(v, (int, float))})
    tracker.log_artifact(at(cfg, "report"))
    print("\n".join(lines))
    return out
