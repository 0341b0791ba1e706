"""train-student: one method per call, e.g. ``nokd``, ``blkd``, ``cgankd``, ``cgankd+fitnet``.

Every method uses the same architecture, step budget and seed. The ``cgankd`` prefix adds the
processed fake set to the real training data (``student.fakes``: this pipeline's make-fakes output
when null, or a fake set made elsewhere). ``student.mode=finetune`` starts a method with fakes
from the checkpoint of the same distiller without fakes, with a low learning rate (the published
recipe); ``scratch`` trains it from random weights.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from cgankd import store
from cgankd.base.errors import CgankdError
from cgankd.base.install import install_hint
from cgankd.base.io import atomic_dir, read_json, write_json
from cgankd.base.tracker import NullTracker
from cgankd.compute import distributed
from cgankd.config import Config
from cgankd.data.prepared import Meta, Split
from cgankd.kd import DISTILLERS, Distiller, Method, parse_method
from cgankd.kd.base import KDContext
from cgankd.models import ImageModel, count_params
from cgankd.stages.common import at, fit_metrics, new_model, prepared, setup, write_history
from cgankd.task import task_of
from cgankd.train.fake_subset import take
from cgankd.train.loop import fit


def fakes_path(cfg: Config) -> Path:
    return Path(cfg.student.fakes) if cfg.student.fakes else at(cfg, "fakes")


def _read_fake_arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if path.suffix == ".npz":
        with np.load(path) as z:
            return z["fake_images"], z["fake_labels"]
    try:
        import h5py  # the reference code's fake sets
    except ImportError:
        raise CgankdError(str(path), f"reading .h5 needs h5py: {install_hint('data')}") from None

    with h5py.File(path, "r") as f:
        return f["fake_images"][:], f["fake_labels"][:]


def load_fakes(cfg: Config, meta: Meta) -> Split:
    """The processed fake set, checked against the real data's format (one-line errors)."""
    path = fakes_path(cfg)
    if not path.is_file():
        hint = "run `cgankd make-fakes` first" if cfg.student.fakes is None else "check student.fakes"
        raise CgankdError(str(path), f"fake set not found ({hint})")
    try:
        images, labels = _read_fake_arrays(path)
    except (KeyError, OSError, ValueError) as exc:
        raise CgankdError(str(path), f"not a fake set with fake_images and fake_labels ({exc})") from None
    shape = (meta.channels, meta.resolution, meta.resolution)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != shape:
        raise CgankdError(str(path), f"fake_images must be uint8 N x {' x '.join(map(str, shape))}, "
                          f"got {images.dtype} {tuple(images.shape)}")
    if len(labels) != len(images) or not np.isfinite(labels).all():
        raise CgankdError(str(path), "fake_labels must be finite, one per image")
    if task_of(meta.task).categorical and len(labels) and (labels.min() < 0 or labels.max() >= meta.num_classes
                                          or not np.array_equal(labels, np.round(labels))):
        raise CgankdError(str(path), f"fake_labels must be class indices in [0, {meta.num_classes})")
    return Split(images, labels)


def make_distiller(cfg: Config, method: Method, student: ImageModel, meta: Meta) -> Distiller:
    """The distiller with what it needs loaded on the student's device: the teacher, or VKD's
    generator."""
    cls = DISTILLERS.get(method.distiller)
    dev = next(student.parameters()).device
    teacher = store.load(at(cfg, "teacher"), "image_model", dev, "train-teacher") if cls.needs_teacher else None
    generator = store.load(at(cfg, "vkd"), "vkd_generator", dev, "train-vkd") if cls.needs_generator else None
    ctx = KDContext(task=meta.task, input_shape=(meta.channels, meta.resolution, meta.resolution), teacher=teacher,
                    generator=generator)
    try:
        return cls(student, ctx, cfg.kd.get(method.distiller))
    except (ValueError, IndexError) as exc:
        raise CgankdError(f"method {method.name!r}", str(exc)) from None


def weak_fakes(cfg: Config, method: Method) -> str | None:
    """make-fakes' verdict line when ``student.skip_weak_fakes`` skips this method: it trains on
    this pipeline's fakes and make-fakes called them too weak; else None."""
    if not (method.fakes and cfg.student.skip_weak_fakes and cfg.student.fakes is None):
        return None
    stats = read_json(at(cfg, "fakes_metrics"))
    return str(stats["verdict"]) if stats.get("weak_fakes") else None


def skip(cfg: Config, method: str, why: str, tracker: NullTracker) -> dict[str, Any]:
    """A skipped student: its folder holds only a note (no model.pt), its metrics say why."""
    note = at(cfg, "student_skipped", method)
    with atomic_dir(note.parent) as tmp:
        (tmp / note.name).write_text(why + "\n")
    metrics = {"skipped": f"student.skip_weak_fakes: {why}"}
    write_json(at(cfg, "student_metrics", method), metrics)
    tracker.set_tags({"cgankd.method": method, "cgankd.skipped": why})
    print(f"train-student[{method}]: skipped (student.skip_weak_fakes): {why}")
    return metrics


def run(cfg: Config, tracker: NullTracker | None = None, method: str = "nokd") -> dict[str, Any]:
    try:
        m = parse_method(method, DISTILLERS.names())
    except ValueError as exc:
        raise CgankdError(f"method {method!r}", str(exc).removeprefix(f"unknown method {method!r}; ")) from None
    tracker = tracker or NullTracker()
    why = weak_fakes(cfg, m)
    if why is not None:
        return skip(cfg, method, why, tracker)
    rt = setup(cfg, 3)
    data = prepared(cfg)
    sc = cfg.student
    fakes = load_fakes(cfg, data.meta) if m.fakes else None
    if fakes is not None and sc.n_fakes is not None:  # the authors' --nfake: a seeded, class-balanced subset
        categorical = task_of(data.meta.task).categorical
        fakes = take(fakes, sc.n_fakes, data.meta.num_classes if categorical else None, cfg.seed + 4)
    steps, lr = sc.steps, sc.lr
    if m.fakes and sc.mode == "finetune":  # from X's best student, or the last NOKD one (the published recipe)
        start, by = (("student", m.distiller) if sc.finetune_from == "own" else ("student_last", "nokd"))
        model = store.load(at(cfg, start, by), "image_model", rt.device, f"train-student --method {by}")
        model.train()
        steps, lr = sc.finetune_steps, sc.finetune_lr
    else:
        model = new_model(sc.arch, data, sc.width, rt.device)
    distiller = make_distiller(cfg, m, model, data.meta)
    tracker.set_tags({"cgankd.method": method, "cgankd.distiller": m.distiller,
                      "cgankd.fakes": str(fakes_path(cfg)) if m.fakes else "none"})
    t0 = time.perf_counter()
    res = fit(model, data, sc, cfg.seed + 3, f"train-student[{method}]",
              fakes=fakes, fake_ratio=sc.fake_ratio if fakes is not None else 0.0, steps=steps, lr=lr,
              log=lambda s, row: tracker.log_metrics(row, step=s), distiller=distiller, runtime=rt)
    if not distributed.is_main():  # torchrun: rank 0 writes the outputs
        return {}
    seconds = time.perf_counter() - t0
    path = at(cfg, "student", method)
    store.save_model(res.best, path, {"best_step": res.best_step, "method": method})
    store.save_model(res.last, at(cfg, "student_last", method), {"method": method, "checkpoint": "last"})
    write_history(at(cfg, "student_history", method), res.history)
    at(cfg, "student_skipped", method).unlink(missing_ok=True)  # a student skipped by an earlier run
    metrics: dict[str, Any] = {"params": count_params(model), "best_step": res.best_step,
                               "n_fakes": 0 if fakes is None else len(fakes)}
    metrics.update(fit_metrics(res, data))
    write_json(at(cfg, "student_metrics", method), metrics)  # reproducible: no wall-clock time in the file
    metrics["train_seconds"] = round(seconds, 1)
    tracker.log_metrics(metrics)
    print(f"train-student[{method}]:", json.dumps(metrics))
    return metrics
