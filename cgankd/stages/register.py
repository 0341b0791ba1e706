"""register: the exported student into the MLflow model registry, moving champion/challenger."""

from __future__ import annotations

import json
import math
from typing import Any

import torch

from cgankd import store
from cgankd.base.errors import CgankdError
from cgankd.base.io import read_json, write_json
from cgankd.base.tracker import NullTracker
from cgankd.config import Config
from cgankd.ops.model_registry import register_student
from cgankd.ops.version_card import model_card
from cgankd.serve.pyfunc import StudentModel
from cgankd.stages.common import at, prepared
from cgankd.task import task_of


def run(cfg: Config, tracker: NullTracker | None = None) -> dict[str, Any]:
    tracker = tracker or NullTracker()
    data = prepared(cfg)
    parity = read_json(at(cfg, "parity"))
    method = parity["method"]
    k = task_of(data.meta.task).metric
    metric = read_json(at(cfg, "student_metrics", method))[f"test_{k}"]
    if not math.isfinite(metric):  # a broken student is never registered, let alone promoted
        raise CgankdError(str(at(cfg, "student_metrics", method)), f"test_{k} is {metric}: the {method} student is "
                          "broken; nothing was registered")
    model = store.load_model(at(cfg, "student", method))  # registration runs on the CPU
    sample = torch.rand(2, data.meta.channels, data.meta.resolution, data.meta.resolution)
    fakes = at(cfg, "fakes_metrics")
    card = model_card(cfg, data.meta, read_json(at(cfg, "metrics")), parity,
                      read_json(fakes) if fakes.is_file() else None, tracker.run_id)
    what = {"metric_name": f"test_{k}", "method": method, "card": card, "pyfunc": StudentModel()}
    if cfg.export.int8:  # the int8 twin goes along only within export.int8_max_drop / int8_max_mae_increase
        m = read_json(at(cfg, "metrics"))
        ok = bool(m.get("int8_registrable"))
        what.update({"int8": at(cfg, "onnx_int8") if ok else None,
                     "int8_why": f"{'logged' if ok else 'refused'}: {m.get('int8_why', 'not evaluated')}"})
        print(f"register: int8 twin {what['int8_why']}")
    info = register_student(cfg, at(cfg, "onnx"), model, sample, metric, what, tracker)
    write_json(at(cfg, "registry"), info)
    print("register:", json.dumps(info))
    return info
