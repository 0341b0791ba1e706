"""``cgankd plan``: a dry run of a config (any profile) before a GPU day is spent on it. For each stage
``cgankd run`` would call: its work (steps, epochs, iterations), the images and fakes it handles, the
device memory it needs and, where ``bench/train_speed.py`` measured the same path and shape on a
GPU, an estimated time. Nothing is trained or written.

The memory is an estimate: fp32 weights, gradients and optimiser state of every network the stage
trains, the images it keeps on the device (uint8), and the activations of one batch, measured by
running the networks once on PyTorch's ``meta`` device (output sizes of every layer, at the autocast
precision). Autograd keeps more than the layers' outputs (inputs of normalisations, masks), the
allocator rounds up and CUDA holds its own context: read the figure as a lower bound. A plan whose
stage needs more than the device has fails in one line (exit 2).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from cgankd.base.errors import CgankdError
from cgankd.config import Config
from cgankd.data.prepared import Meta
from cgankd.pipeline.spec import stage_calls, stage_label
from cgankd.task import task_of

GIB = 2**30
ADAM, SGD = 16, 12  # bytes per parameter: weights + gradients + Adam's two moments / SGD's momentum


@dataclass
class Data:
    meta: Meta
    n_train: int
    n_val: int
    n_test: int


@dataclass
class Row:
    stage: str
    work: str
    images: int = 0
    fakes: int = 0
    memory: int = 0  # bytes on the device
    seconds: float | None = None


def data_of(cfg: Config) -> Data:
    """The prepared data's shape: read from the prepared folder when ``prepare`` ran, else from the
    source with the same label budget and resolution rule (the data set is read, nothing is written)."""
    if (cfg.path("prepared") / "meta.json").is_file():
        from cgankd.data.prepared import load_prepared

        d = load_prepared(cfg.path("prepared"))
        return Data(d.meta, len(d["train"]), len(d["val"]), len(d["test"]))
    from cgankd.data.budget import split_budget, target_resolution
    from cgankd.data.sources import SOURCES

    pool = SOURCES.get(cfg.source)(cfg)
    if pool.val_x is None:
        tr, va = split_budget(pool.train_y, pool.task, cfg.data.n_per_class, cfg.data.n_val_per_class,
                              cfg.data.seed, f"data.source={cfg.source}")
        n_train, n_val = len(tr), len(va)
    else:
        n_train, n_val = len(pool.train_y), len(pool.val_y)
    meta = Meta(task=pool.task, source=cfg.source, channels=int(pool.train_x.shape[1]),
                resolution=target_resolution(pool.train_x.shape[-1], cfg.data.resolution), classes=list(pool.classes))
    return Data(meta, n_train, n_val, len(pool.test_y))


def activation_bytes(model: nn.Module, *inputs: torch.Tensor, bytes_per: int) -> int:
    """What one forward pass of ``model`` at these (meta) inputs keeps: every leaf layer's output."""
    total = 0

    def hook(_m: nn.Module, _i: object, out: object) -> None:
        nonlocal total
        for t in out if isinstance(out, tuple) else (out,):
            if isinstance(t, torch.Tensor):
                total += t.numel() * bytes_per

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
    return total


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _precision_bytes(cfg: Config) -> int:
    return 4 if cfg.precision in ("fp32", "auto") else 2  # auto: fp32 where bf16 is not native


def _images(d: Data, n: int) -> int:
    return n * d.meta.channels * d.meta.resolution ** 2  # uint8 on the device


def _classifier_row(name: str, cfg: Config, d: Data, tc, n_images: int, fakes: int = 0,  # noqa: ANN001
                    steps: int | None = None) -> Row:
    """A fit of ``tc`` (a TrainCfg): ``steps`` when given (a student's fine-tuning), else its own budget."""
    from cgankd.models import build_model

    outputs = d.meta.num_classes if task_of(d.meta.task).categorical else 1
    with torch.device("meta"):
        model = build_model(tc.arch, d.meta.channels, outputs, d.meta.resolution, tc.width)
        x = torch.zeros(tc.batch_size, d.meta.channels, d.meta.resolution, d.meta.resolution)
    steps = (tc.epochs * math.ceil((n_images + fakes) / tc.batch_size)) if tc.epochs else steps or tc.steps
    work = (f"{tc.epochs} epochs = {steps:,} steps" if tc.epochs else f"{steps:,} steps") + f" of {tc.batch_size}"
    memory = SGD * params(model) + _images(d, n_images + fakes) + activation_bytes(
        model, x, bytes_per=_precision_bytes(cfg))
    return Row(name, f"{work}, {tc.arch}", n_images, fakes, memory)


def _teacher(cfg: Config, d: Data, _method: str | None) -> Row:
    return _classifier_row("train-teacher", cfg, d, cfg.teacher, d.n_train)


def _filter_net(cfg: Config, d: Data, _method: str | None) -> Row:
    tc = replace(cfg.teacher, arch=str(cfg.filter.net))  # the teacher's settings, its own arch
    return _classifier_row("train-filter-net", cfg, d, tc, d.n_train)


def _extractor(cfg: Config, d: Data, _method: str | None) -> Row:
    if task_of(d.meta.task).categorical:
        return _classifier_row("train-extractor", cfg, d, cfg.extractor, d.n_train)
    from cgankd.features.autoencoders import AES

    ec = cfg.extractor
    with torch.device("meta"):
        model, how = AES.get(ec.ae)(ec, d.meta, d.n_train)
        x = torch.zeros(ec.batch_size, d.meta.channels, d.meta.resolution, d.meta.resolution)
    work = (f"{ec.epochs} epochs = " if ec.ae == "paper" and ec.epochs else "") + f"{how.steps:,} steps"
    per_param = ADAM if ec.ae == "small" else SGD
    memory = per_param * params(model) + _images(d, d.n_train) + activation_bytes(model, x, bytes_per=4)
    return Row("train-extractor", f"{work} of {ec.batch_size}, sparse autoencoder ({ec.ae}, {model.feat_dim:,}-d)",
               d.n_train, 0, memory)


def _gan(cfg: Config, d: Data, _method: str | None) -> Row:
    from cgankd.gan.train import build_gan

    g_cfg, b, m = cfg.gan, cfg.gan.batch_size, d.meta
    classes = m.num_classes if task_of(m.task).categorical else None
    with torch.device("meta"):
        g, disc = build_gan(g_cfg, classes, m.resolution, m.channels)
        z = torch.zeros(b, g_cfg.z_dim)
        y = torch.zeros(b, dtype=torch.long) if classes else torch.zeros(b)
        x = torch.zeros(2 * b, m.channels, m.resolution, m.resolution)
        y2 = torch.cat([y, y])
    per = _precision_bytes(cfg)
    acts = max(activation_bytes(disc, x, y2, bytes_per=per),  # D's step: reals and fakes in one call
               activation_bytes(g, z, y, bytes_per=per) + activation_bytes(disc, x[:b], y, bytes_per=per))
    memory = ADAM * (params(g) + params(disc)) + 4 * params(g) + _images(d, d.n_train) + acts  # + the EMA copy
    work = (f"{g_cfg.iterations:,} iterations x {g_cfg.d_steps} D steps at {b}, {g_cfg.arch} width "
            f"{g_cfg.g_ch}/{g_cfg.d_ch}, z {g_cfg.z_dim}")
    return Row("train-gan", work, d.n_train, 0, memory, _gan_seconds(cfg))


def n_fakes(cfg: Config, d: Data, used: bool = False) -> int:
    """The fakes make-fakes keeps; ``used``: those a student trains on (at most ``student.n_fakes``)."""
    made = (cfg.fakes.n_per_class * d.meta.num_classes if task_of(d.meta.task).categorical
            else cfg.fakes.n_labels * cfg.fakes.n_per_label)
    return min(made, cfg.student.n_fakes) if used and cfg.student.n_fakes is not None else made


def _fakes(cfg: Config, d: Data, _method: str | None) -> Row:
    n = n_fakes(cfg, d)
    parts = [f"{n:,} fakes kept"]
    if cfg.subsample_fakes:
        parts.append(f"cDR-RS: up to {cfg.subsample.max_draw_factor}x drawn")
    if cfg.filter.enabled:
        parts.append(f"filter rho {cfg.rho:g}")
    return Row("make-fakes", ", ".join(parts), d.n_train, n, _images(d, cfg.fakes.batch_size) * 4 * 2)


def _vkd(cfg: Config, d: Data, _method: str | None) -> Row:
    v = cfg.vkd
    return Row("train-vkd", f"{v.steps:,} steps of {v.batch_size}", d.n_train * v.views, 0, 0)


def _student(cfg: Config, d: Data, method: str | None) -> Row:
    from cgankd.kd.methods import method_uses_fakes

    fakes = n_fakes(cfg, d, used=True) if method and method_uses_fakes(method) and cfg.student.fake_ratio > 0 else 0
    sc = cfg.student
    return _classifier_row(f"train-student[{method}]", cfg, d, sc, d.n_train, fakes,
                           sc.finetune_steps if fakes and sc.mode == "finetune" else None)


ESTIMATES: dict[str, Callable[[Config, Data, str | None], Row]] = {
    "train-teacher": _teacher, "train-filter-net": _filter_net, "train-extractor": _extractor, "train-gan": _gan,
    "make-fakes": _fakes, "train-vkd": _vkd, "train-student": _student}


def _gan_seconds(cfg: Config) -> float | None:
    """From bench/results/train_speed*.json: a CUDA row of the same precision, compile and mode at the
    GAN's batch and width, when one was measured."""
    key = f"gan_b{cfg.gan.batch_size}_w{cfg.gan.g_ch}_it_s"
    root = Path(__file__).resolve().parents[2] / "bench" / "results"
    for path in sorted(root.glob("train_speed*.json")):
        for r in json.loads(path.read_text()).get("rows", []):
            if (r.get("device") == "cuda" and key in r and r.get("precision") == cfg.precision
                    and r.get("compile") == cfg.compile and r.get("compile_mode") == cfg.compile_mode):
                return cfg.gan.iterations / r[key]
    return None


def plan(cfg: Config) -> tuple[Data, list[Row]]:
    d = data_of(cfg)
    rows = [Row("prepare", f"data.source={cfg.source}: {d.n_train:,} train / {d.n_val:,} val / {d.n_test:,} test "
                f"at {d.meta.channels}x{d.meta.resolution}x{d.meta.resolution}", d.n_train)]
    for name, kwargs in stage_calls(cfg):
        estimate = ESTIMATES.get(name)
        if estimate is not None:
            rows.append(estimate(cfg, d, kwargs.get("method")))
        elif name != "prepare":
            rows.append(Row(stage_label(name, kwargs), "CPU-side (export, report, registry)"))
    return d, rows


def device_memory(cfg: Config, given: float | None) -> tuple[int | None, str]:
    """The device's memory in bytes and its name: ``given`` GiB, else the GPU's own, else none known."""
    if given is not None:
        return int(given * GIB), f"{given:g} GiB given"
    if cfg.device.startswith("cuda") and torch.cuda.is_available():
        p = torch.cuda.get_device_properties(torch.device(cfg.device).index or 0)
        return p.total_memory, p.name
    return None, "no GPU here: pass --device-memory GIB to check against one"


def render(cfg: Config, rows: list[Row], memory: int | None, device: str) -> str:
    def cell(r: Row) -> list[str]:
        t = "-" if r.seconds is None else f"{r.seconds / 3600:.1f} h"
        return [r.stage, r.work, f"{r.images:,}" if r.images else "-", f"{r.fakes:,}" if r.fakes else "-",
                f"{r.memory / GIB:.2f} GiB" if r.memory else "-", t]

    head = ["stage", "work", "images", "fakes", "device memory", "est. time"]
    body = [cell(r) for r in rows]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = [f"plan: profile {cfg.profile or 'none'}, device {cfg.device}, {cfg.precision}"
             f"{', compile ' + cfg.compile_mode if cfg.compile else ''}; device memory: {device}"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [head, *body]]
    if all(r.seconds is None for r in rows):
        lines.append("est. time: no GPU speed measured for these paths yet (bench/gpu_check.sh on a GPU writes "
                     "bench/results/train_speed*.json rows this reads)")
    return "\n".join(lines)


def check(rows: list[Row], memory: int | None) -> None:
    """One line (exit 2) for the first stage that needs more memory than the device has."""
    if memory is None:
        return
    for r in rows:
        if r.memory > memory:
            raise CgankdError(f"plan {r.stage}", f"needs about {r.memory / GIB:.2f} GiB on the device, which has "
                              f"{memory / GIB:.2f} GiB: lower its batch size or width, or its data on the device")
