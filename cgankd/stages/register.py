"""register: the exported student into the MLflow model registry, moving champion/challenger."""

from __future__ import annotations

import json
from typing import Any

import torch

from cgankd import store
from cgankd.config import Config
from cgankd.io import read_json, write_json
from cgankd.stages.common import metric_key, prepared
from cgankd.stages.registry import STAGES
from cgankd.tracking import NullTracker, register_student


@STAGES.register("register")
def run(cfg: Config, tracker: NullTracker | None = None) -> dict[str, Any]:
    tracker = tracker or NullTracker()
    data = prepared(cfg)
    parity = read_json(cfg.path("export", "parity.json"))
    method = parity["method"]
    k = metric_key(data.meta.task)
    metric = read_json(cfg.student_metrics(method))[f"test_{k}"]
    model = store.load_model(store.Layout(cfg).student(method))  # registration runs on the CPU
    sample = torch.rand(2, data.meta.channels, data.meta.resolution, data.meta.resolution)
    info = register_student(cfg, cfg.path("export", "student.onnx"), model, sample, metric,
                            {"metric_name": f"test_{k}", "method": method}, tracker)
    write_json(cfg.path("registry.json"), info)
    print("register:", json.dumps(info))
    return info
