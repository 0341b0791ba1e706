"""export: the selected student (best validation metric) to ONNX, with the parity check."""

from __future__ import annotations

import json
from typing import Any

from cgankd import store
from cgankd.base.io import read_json, write_json
from cgankd.base.tracker import NullTracker
from cgankd.config import Config
from cgankd.stages.common import at, prepared
from cgankd.task import task_of
from cgankd.train.evaluate import better


def select_student(cfg: Config, task: str) -> tuple[str, dict[str, Any]]:
    """The method whose student has the best *validation* metric (never the test split); students
    skipped by ``student.skip_weak_fakes`` are not candidates."""
    key = f"val_{task_of(task).metric}"
    best, best_m = None, None
    for method in cfg.student.methods:
        m = read_json(at(cfg, "student_metrics", method))
        if "skipped" in m:
            continue
        if best_m is None or better(m[key], best_m[key], task):
            best, best_m = method, m
    return best, best_m


def int8_twin(cfg: Config, data: Any, fp32: Any) -> dict[str, int]:
    """export/student.int8.onnx, calibrated on training reals and the kept fakes (cgankd/serve/quantize.py)."""
    import numpy as np

    from cgankd.serve.quantize import calibration_set, quantize_int8

    fakes, fake_images = at(cfg, "fakes"), None
    if cfg.uses_fakes and cfg.student.fakes is None and fakes.is_file():  # the pipeline's own kept fakes
        with np.load(fakes) as z:
            fake_images = z["fake_images"]
    images, counts = calibration_set(data["train"].images, fake_images, cfg.export.int8_calibration, cfg.seed)
    quantize_int8(fp32, at(cfg, "onnx_int8"), images)
    return counts


def fp16_twin(cfg: Config, fp32: Any, channels: int, resolution: int) -> dict[str, Any]:
    """export/student.fp16.onnx for GPU serving, checked against the fp32 model on the serving provider
    (cgankd/serve/fp16.py)."""
    from cgankd.compute.providers import choose_providers
    from cgankd.serve.fp16 import check_fp16, convert_fp16

    convert_fp16(fp32, at(cfg, "onnx_fp16"))
    return check_fp16(fp32, at(cfg, "onnx_fp16"), channels, resolution, choose_providers(cfg.serve.providers))


def run(cfg: Config, tracker: NullTracker | None = None) -> dict[str, Any]:
    from cgankd.serve.onnx_export import export_onnx, parity, serving_metadata

    tracker = tracker or NullTracker()
    data = prepared(cfg)
    method, m = select_student(cfg, data.meta.task)
    model = store.load_model(at(cfg, "student", method))  # export and parity run on the CPU
    onnx, c, r = at(cfg, "onnx"), data.meta.channels, data.meta.resolution
    export_onnx(model, onnx, c, r, cfg.export.opset, cfg.export.dynamo, serving_metadata(data.meta, method))
    report = parity(model, onnx, c, r, cfg.export.atol)
    report.update({"method": method, "selected_by": f"val_{task_of(data.meta.task).metric}",
                   "opset": cfg.export.opset, "dynamo": cfg.export.dynamo})
    if cfg.export.int8:
        report["int8"] = int8_twin(cfg, data, onnx)
    else:
        at(cfg, "onnx_int8").unlink(missing_ok=True)  # an earlier run's twin is not this student's
    if cfg.export.fp16:
        report["fp16"] = fp16_twin(cfg, onnx, c, r)
    else:
        at(cfg, "onnx_fp16").unlink(missing_ok=True)
    write_json(at(cfg, "parity"), report)
    tracker.log_metrics({k: v for k, v in report.items() if k.startswith("max_abs")})
    tracker.set_tags({"cgankd.selected": method})
    print("export:", json.dumps(report))
    return report
