"""Helpers the stages share: set-up (threads, seeds, the runtime), data loading, histories and
metrics files. Model files and the output layout live in ``cgankd.store``."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from cgankd import store
from cgankd.base.errors import CgankdError
from cgankd.base.io import read_json, write_json, write_text
from cgankd.base.tracker import NullTracker
from cgankd.compute import distributed
from cgankd.compute.device import Runtime
from cgankd.config import Config
from cgankd.config.layout import Layout
from cgankd.data.prepared import Meta, Prepared, load_prepared
from cgankd.models import ImageModel, build_model, count_params
from cgankd.task import task_of
from cgankd.train.evaluate import metrics, predict, seen_unseen
from cgankd.train.loop import FitResult, fit, seed_everything, set_threads


def setup(cfg: Config, offset: int = 0) -> Runtime:
    """Threads and seeds; returns the stage's runtime (device, precision, compile), on this rank's
    device under torchrun."""
    set_threads(cfg.threads)
    seed_everything(cfg.seed + offset)
    return distributed.runtime(cfg.runtime)


def at(cfg: Config, key: str, method: str | None = None) -> Path:
    """The path of a file of the output layout (``config.layout.PATHS``), e.g. ``at(cfg, "teacher_metrics")``."""
    return Layout(cfg).path(key, method)


def prepared(cfg: Config) -> Prepared:
    return load_prepared(at(cfg, "prepared"))


def num_outputs(data: Prepared) -> int:
    return task_of(data.meta.task).num_outputs(data.meta.num_classes)


def new_model(arch: str, data: Prepared, width: float = 1.0, device: Any = "cpu") -> ImageModel:
    m = data.meta
    model = build_model(arch, m.channels, num_outputs(data), m.resolution, width)
    model.meta.update({"task": m.task, "classes": m.classes, "label_range": m.label_range,
                       "label_unit": m.label_unit})
    return model.to(device)


def write_history(path: Path, rows: list[dict[str, float]]) -> None:
    if not rows:
        return
    buf = io.StringIO()
    keys = list(dict.fromkeys(k for r in rows for k in r))
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    w.writerows(rows)
    write_text(path, buf.getvalue())


def teacher_metric(cfg: Config, meta: Meta) -> float:
    """The teacher's own validation metric (accuracy % or MAE): what label scores are relative to."""
    key = f"val_{task_of(meta.task).metric}"
    m = read_json(at(cfg, "teacher_metrics"))
    if key not in m:
        raise CgankdError(str(at(cfg, "teacher_metrics")), f"has no {key}; re-run train-teacher")
    return float(m[key])


def train_network(cfg: Config, tracker: NullTracker, arch: str, seed_offset: int, name: str,
                  key: str, init: tuple[str, str] | None = None) -> dict[str, Any]:
    """A network of ``arch`` on the real training set with the teacher's settings (``teacher``: steps,
    schedule, width), written to the layout's ``key`` (its model), ``key_history`` and
    ``key_metrics``: the teacher, and the filter network apart from it (``filter.net``). ``init``
    (a path and the param naming it): a released checkpoint loaded instead (cgankd/models/released.py),
    scored on the same splits."""
    rt = setup(cfg, seed_offset)
    data = prepared(cfg)
    model = new_model(arch, data, cfg.teacher.width, rt.device)
    if init is not None:
        from cgankd.models.released import load_released

        load_released(init[0], model, arch, f"param {init[1]}")
        res = FitResult(model.eval(), model, 0, [])
        tracker.set_tags({f"cgankd.{init[1]}": init[0]})
        print(f"{name}: loaded {init[0]} ({arch}), not trained")
    else:
        res = fit(model, data, cfg.teacher, cfg.seed + seed_offset, name,
                  log=lambda s, row: tracker.log_metrics(row, step=s), runtime=rt)
    if not distributed.is_main():  # torchrun: rank 0 writes the outputs
        return {}
    store.save_model(res.best, at(cfg, key), {"best_step": res.best_step, **({"source": init[0]} if init else {})})
    write_history(at(cfg, f"{key}_history"), res.history)
    m = {"params": count_params(model), "best_step": res.best_step}
    m.update(fit_metrics(res, data))
    write_json(at(cfg, f"{key}_metrics"), m)
    tracker.log_metrics(m)
    print(f"{name}:", json.dumps(m))
    return m


def fit_metrics(res: FitResult, data: Prepared) -> dict[str, float]:
    """Validation and test metrics of the best-validation model, test of the last one, and for
    regression the test MAE on labels seen vs unseen in training."""
    val, test = data["val"], data["test"]
    out = metrics(predict(res.best, val.images), val.labels, data.meta, "val")
    best_test = predict(res.best, test.images)
    out.update(metrics(best_test, test.labels, data.meta, "test"))
    out.update(metrics(predict(res.last, test.images), test.labels, data.meta, "test_last"))
    if not task_of(data.meta.task).categorical:
        out.update(seen_unseen(best_test, test.labels, data["train"].labels, data.meta, "test"))
    return out
