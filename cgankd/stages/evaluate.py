"""evaluate: the teacher / NOKD / cGAN-KD comparison on the test split (every model's metrics, the
int8 twin's, every model's test outputs); what it writes and shows is ``evaluate_report``."""

from __future__ import annotations

from typing import Any

from cgankd import store
from cgankd.base.io import read_json
from cgankd.base.tracker import NullTracker
from cgankd.config import Config
from cgankd.data.prepared import Prepared
from cgankd.stages.common import at, prepared
from cgankd.stages.evaluate_report import Compared, report, safe
from cgankd.task import task_of
from cgankd.train.evaluate import metrics, predict


def comparison(rows: dict[str, dict[str, Any]], k: str, task: str, fakes: dict[str, Any], parity: dict[str, Any],
               skipped: list[str]) -> dict[str, Any]:
    """metrics.json: each model's validation and test metrics and size, cGAN-KD's difference to NOKD,
    the exported method and the fakes' verdict."""
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
    return out


def int8_scores(cfg: Config, data: Prepared) -> dict[str, Any]:
    """The int8 twin beside the fp32 ONNX model, on the test split (cgankd/serve/quantize.py)."""
    from cgankd.serve.quantize import int8_report, onnx_outputs

    test, task = data["test"], data.meta.task
    k = task_of(task).metric
    score = {p: metrics(onnx_outputs(at(cfg, key), test.images), test.labels, data.meta, "test")[f"test_{k}"]
             for p, key in (("fp32", "onnx"), ("int8", "onnx_int8"))}
    return int8_report(task, score["fp32"], score["int8"], cfg.export.int8_max_drop, cfg.export.int8_max_mae_increase)


def run(cfg: Config, tracker: NullTracker | None = None) -> dict[str, Any]:
    tracker = tracker or NullTracker()
    data = prepared(cfg)
    task, k = data.meta.task, task_of(data.meta.task).metric
    rows = {"teacher": read_json(at(cfg, "teacher_metrics"))}
    rows.update({m: read_json(at(cfg, "student_metrics", m)) for m in cfg.student.methods})
    skipped = [m for m in list(rows) if "skipped" in rows[m]]
    for m in skipped:
        rows.pop(m)
    fakes = read_json(at(cfg, "fakes_metrics")) if cfg.uses_fakes else {}
    parity = read_json(at(cfg, "parity"))
    out = comparison(rows, k, task, fakes, parity, skipped)
    int8 = int8_scores(cfg, data) if cfg.export.int8 else None
    if int8 is not None:
        out.update({f"onnx_fp32_test_{k}": int8[f"fp32_test_{k}"], f"onnx_int8_test_{k}": int8[f"int8_test_{k}"],
                    "int8_registrable": float(int8["registrable"]), "int8_why": int8["why"]})
    models = {"teacher": at(cfg, "teacher"), **{m: at(cfg, "student", m) for m in rows if m != "teacher"}}
    preds = {name: predict(store.load_model(p, cfg.runtime.device), data["test"].images) for name, p in models.items()}
    report(cfg, data, Compared(rows, skipped, fakes, parity, out, int8, preds), tracker)
    return out
