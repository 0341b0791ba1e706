"""One typed, validated config built from params.yaml and ``-S dotted.key=value`` overrides.

Every error names the offending key. The dataclass defaults mirror params.yaml, so a key left
out of the file falls back to the documented default.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from cgankd.base.errors import CgankdError
from cgankd.task import TASKS, task_of

if TYPE_CHECKING:
    from cgankd.compute.device import Runtime



@dataclass
class RenderCfg:
    resolution: int = 32
    supersample: int = 2
    models_per_class: int = 4
    model_seed: int = 1234
    yaw_range: list[float] = field(default_factory=lambda: [0.0, 360.0])
    elevation_range: list[float] = field(default_factory=lambda: [5.0, 45.0])
    scale_range: list[float] = field(default_factory=lambda: [0.7, 1.0])
    shift: float = 0.08
    clutter: int = 3
    color_jitter: float = 1.0
    ambient_range: list[float] = field(default_factory=lambda: [0.25, 0.55])
    noise: float = 0.02


@dataclass
class RcCfg:
    n_models: int = 49
    angle_step: float = 0.1
    train_every: int = 2
    n_per_angle: int = 2
    n_val: int = 500
    n_test_per_angle: int = 5
    elevation_range: list[float] = field(default_factory=lambda: [20.0, 40.0])


RESOLUTIONS = (16, 32, 64, 128)  # square image sizes the GANs, models and renderer are built for


@dataclass
class DataCfg:
    source: str = "auto"
    root: str | None = None
    seed: int = 0
    n_per_class: int | None = 100
    n_val_per_class: int = 20
    n_test: int = 5000
    resolution: int | None = None
    channels: int | None = None
    render: RenderCfg = field(default_factory=RenderCfg)
    rc: RcCfg = field(default_factory=RcCfg)


@dataclass
class TrainCfg:
    arch: str = "resnet20"
    steps: int = 2000
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    augment: bool = True
    eval_every: int = 250
    width: float = 1.0
    grad_clip: float = 5.0


@dataclass
class StudentCfg(TrainCfg):
    arch: str = "convnet_s"
    steps: int = 1200
    fake_ratio: float = 2.0
    mode: str = "finetune"
    finetune_lr: float = 0.01
    finetune_steps: int = 1000
    methods: list[str] = field(default_factory=lambda: ["nokd", "cgankd"])
    fakes: str | None = None
    tag: str | None = None
    skip_weak_fakes: bool = False


@dataclass
class KDCfg:
    temperature: float = 4.0
    alpha: float = 0.9
    beta: float = 100.0
    hint_layer: int | None = None


@dataclass
class VKDCfg:
    steps: int = 2000
    batch_size: int = 128
    lr: float = 2e-4
    kl_weight: float = 1.0
    z_dim: int = 16
    views: int = 8


@dataclass
class ExtractorCfg(TrainCfg):
    arch: str = "resnet8"
    steps: int = 600
    eval_every: int = 200
    feat_dim: int = 64
    sparsity: float = 1e-3
    ae_lr: float = 1e-3


@dataclass
class SubsampleCfg:
    enabled: bool | None = None
    dre_lambda: float = 0.01
    dre_steps: int = 1500
    dre_batch_size: int = 256
    dre_lr: float = 1e-3
    dre_hidden: int = 256
    n_fake_train: int = 5000
    max_draw_factor: int = 2
    holdout: float = 0.3
    dre_weight_decay: float = 1e-3
    dre_patience: int | None = 5
    m_quantile: float = 0.95


@dataclass
class QualityCfg:
    n_fakes: int = 2000
    n_windows: int = 19
    window: float = 0.1


@dataclass
class CcganCfg:
    vicinity: str = "soft"
    sigma: float | None = None
    kappa: float | None = None
    kappa_k: float = 1.0
    threshold: float = 1e-3


@dataclass
class GanCfg:
    iterations: int = 800
    batch_size: int = 64
    z_dim: int = 64
    g_ch: int = 24
    d_ch: int = 24
    embed_dim: int = 64
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.0, 0.999])
    d_steps: int = 1
    ema_decay: float = 0.999
    ema_start: int = 200
    diffaug: str = "color,translation,cutout"
    checkpoint_every: int = 250
    score_every: int = 200
    score_n: int = 50
    stop_patience: int | None = None
    target_score: float | None = None
    max_minutes: float | None = None
    ccgan: CcganCfg = field(default_factory=CcganCfg)


@dataclass
class FakesCfg:
    n_per_class: int = 1000
    n_labels: int = 900
    n_per_label: int = 10
    batch_size: int = 500
    truncation: float | None = None
    min_relative_score: float | None = None


@dataclass
class FilterCfg:
    enabled: bool = True
    rho: float | None = None
    burn_in: int = 1000
    max_rounds: int = 50


@dataclass
class AdjustCfg:
    enabled: bool | None = None


@dataclass
class ExportCfg:
    opset: int = 18
    atol: float = 1e-4
    dynamo: bool = False


@dataclass
class TrackingCfg:
    experiment: str = "cgankd"
    model_name: str | None = None
    promotion_margin: float = 0.5


@dataclass
class ServeCfg:
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_mb: float = 16.0
    max_batch: int = 1024
    providers: str = "auto"
    threads: int | None = None
    max_in_flight: int = 64
    body_timeout_s: float = 10.0
    token_file: str | None = None
    allowed_hosts: list[str] | None = None


@dataclass
class Config:
    profile: str | None = None
    seed: int = 0
    task: str = "classification"
    out_dir: str = "artifacts"
    threads: int | None = None
    device: str = "auto"
    precision: str = "fp32"
    compile: bool = False
    compile_mode: str = "default"
    data: DataCfg = field(default_factory=DataCfg)
    teacher: TrainCfg = field(default_factory=lambda: TrainCfg(arch="resnet20", steps=1000))
    student: StudentCfg = field(default_factory=StudentCfg)
    kd: KDCfg = field(default_factory=KDCfg)
    vkd: VKDCfg = field(default_factory=VKDCfg)
    gan: GanCfg = field(default_factory=GanCfg)
    fakes: FakesCfg = field(default_factory=FakesCfg)
    filter: FilterCfg = field(default_factory=FilterCfg)
    adjust: AdjustCfg = field(default_factory=AdjustCfg)
    extractor: ExtractorCfg = field(default_factory=ExtractorCfg)
    subsample: SubsampleCfg = field(default_factory=SubsampleCfg)
    quality: QualityCfg = field(default_factory=QualityCfg)
    export: ExportCfg = field(default_factory=ExportCfg)
    tracking: TrackingCfg = field(default_factory=TrackingCfg)
    serve: ServeCfg = field(default_factory=ServeCfg)

    @property
    def source(self) -> str:
        """The data source, with ``auto`` resolved from the task."""
        if self.data.source != "auto":
            return self.data.source
        return task_of(self.task).default_source

    @property
    def rho(self) -> float:
        """The filter quantile: ``filter.rho``, or the published default (0.9 / 0.7 by task);
        1.0 when filtering is off."""
        if not self.filter.enabled:
            return 1.0
        if self.filter.rho is not None:
            return self.filter.rho
        return task_of(self.task).default_rho

    @property
    def min_relative_score(self) -> float:
        """``fakes.min_relative_score``, or the threshold measured for the task (docs/results.md):
        classification fakes helped from 0.96 of the teacher's accuracy on (not at 0.72), regression
        fakes lowered the MAE from the lowest score measured, 0.48, on."""
        if self.fakes.min_relative_score is not None:
            return self.fakes.min_relative_score
        return task_of(self.task).min_relative_score

    @property
    def adjust_labels(self) -> bool:
        """``adjust.enabled``, or the published default: on for regression, off for classification."""
        if self.adjust.enabled is not None:
            return self.adjust.enabled
        return task_of(self.task).adjust_labels

    @property
    def subsample_fakes(self) -> bool:
        """``subsample.enabled``, or the default chosen by validation metric in the ablation on the
        embedded data (README): on for classification, off for regression."""
        if self.subsample.enabled is not None:
            return self.subsample.enabled
        return task_of(self.task).subsample

    @property
    def runtime(self) -> Runtime:
        """Device, precision and compile, checked (a missing GPU or compiler is a one-line error)."""
        from cgankd.compute.device import Runtime

        return Runtime.from_config(self.device, self.precision, self.compile, self.compile_mode)

    @property
    def model_name(self) -> str:
        """The registered model: ``tracking.model_name``, or ``cgankd-<source>``."""
        return self.tracking.model_name or f"cgankd-{self.source}"

    def path(self, *parts: str) -> Path:
        return Path(self.out_dir).joinpath(*parts)

    def student_dir(self, method: str) -> Path:
        """``students/<method>``, or ``students/<student.tag>/<method>`` (students of several
        architectures next to one teacher)."""
        return self.path("students", *([self.student.tag] if self.student.tag else []), method)

    def student_metrics(self, method: str) -> Path:
        tag = f"{self.student.tag}_" if self.student.tag else ""
        return self.path("metrics", f"student_{tag}{method}.json")

    @property
    def uses_fakes(self) -> bool:
        """Some method trains on this pipeline's own fake set (so the GAN stages must run)."""
        from cgankd.kd.methods import method_uses_fakes

        return self.student.fakes is None and any(method_uses_fakes(m) for m in self.student.methods)

    @property
    def uses_vkd(self) -> bool:
        from cgankd.kd.methods import method_distiller

        return any(method_distiller(m) == "vkd" for m in self.student.methods)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def flat(self) -> dict[str, Any]:
        """Dotted keys -> values, for MLflow params."""
        return dict(_flatten(self.to_dict()))


def _flatten(d: dict[str, Any], prefix: str = ""):
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from _flatten(v, key + ".")
        else:
            yield key, v


def _check_type(key: str, value: Any, tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(key, value, arg)
            except CgankdError as exc:
                errors.append(exc.problem)
        raise CgankdError(f"param {key}", errors[0] if errors else f"bad value {value!r}")
    if origin is list:
        (inner,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise CgankdError(f"param {key}", f"expected a list, got {value!r}")
        return [_check_type(f"{key}[{i}]", v, inner) for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise CgankdError(f"param {key}", f"expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise CgankdError(f"param {key}", f"expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CgankdError(f"param {key}", f"expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise CgankdError(f"param {key}", f"expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp} for {key}")


def _build(cls: type, data: dict[str, Any], prefix: str, base: Any = None) -> Any:
    if not isinstance(data, dict):
        raise CgankdError(f"param {prefix.rstrip('.') or '<root>'}", "expected a mapping")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"did you mean {prefix}{close[0]}? " if close else ""
            raise CgankdError(f"param {prefix}{key}", f"unknown key; {hint}known: {', '.join(sorted(names))}")
    obj = base if base is not None else cls()
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        tp = hints[f.name]
        value = data[f.name]
        if dataclasses.is_dataclass(tp):
            setattr(obj, f.name, _build(tp, value, f"{prefix}{f.name}.", getattr(obj, f.name)))
        else:
            setattr(obj, f.name, _check_type(f"{prefix}{f.name}", value, tp))
    return obj


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = tree
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise CgankdError(f"override {key}", f"{p} is not a section")
    node[parts[-1]] = value


def safe_yaml(text: str, what: str) -> Any:
    """``yaml.safe_load`` that refuses anchors and aliases: a flat parameter file has no use for
    them, and a few hundred bytes of nested aliases expand to gigabytes (a YAML bomb). The events
    are scanned before anything is built, so a bomb costs only its own size."""
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise CgankdError(what, "YAML anchors and aliases (&, *) are not accepted in parameters; write the "
                              "values out")
    return yaml.safe_load(text)


def parse_override(text: str) -> tuple[str, Any]:
    """``"filter.rho=0.7"`` -> ``("filter.rho", 0.7)``; values are parsed as YAML scalars."""
    if "=" not in text:
        raise CgankdError(f"override {text!r}", "expected key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise CgankdError(f"override {text!r}", "empty key")
    try:
        value = safe_yaml(raw, f"override {key}") if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key, value


def _numbers(obj: Any, prefix: str = "") -> typing.Iterator[tuple[str, Any]]:
    """(dotted key, value) of every number in the config, list items included."""
    for f in dataclasses.fields(obj):
        v, key = getattr(obj, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(v):
            yield from _numbers(v, key + ".")
        elif isinstance(v, list):
            yield from ((key, x) for x in v if isinstance(x, (int, float)) and not isinstance(x, bool))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            yield key, v


NON_NEGATIVE_INTS = ("seed", "threads", "data.seed", "data.n_test", "data.n_val_per_class", "data.rc.n_val",
                     "data.rc.n_test_per_angle", "data.rc.n_per_angle", "data.rc.n_models", "data.render.clutter")


def _validate(cfg: Config, runtime: bool = True) -> None:
    def bad(key: str, problem: str) -> None:
        raise CgankdError(f"param {key}", problem)

    for key, v in _numbers(cfg):  # NaN and infinity pass every comparison below: refuse them first
        if not math.isfinite(v):
            bad(key, f"must be a finite number, got {v}")
        if key in NON_NEGATIVE_INTS and v < 0:
            bad(key, f"must be >= 0, got {v}")

    if cfg.task not in TASKS:
        bad("task", f"must be one of {', '.join(TASKS)}, got {cfg.task!r}")
    if runtime:  # device / precision / compile: checked before any stage writes a file
        from cgankd.compute.device import Runtime

        Runtime.from_config(cfg.device, cfg.precision, cfg.compile, cfg.compile_mode)
    if cfg.filter.rho is not None and not 0.0 < cfg.filter.rho <= 1.0:
        bad("filter.rho", f"must be in (0, 1], got {cfg.filter.rho}")
    if cfg.gan.ccgan.vicinity not in ("hard", "soft"):
        bad("gan.ccgan.vicinity", f"must be hard or soft, got {cfg.gan.ccgan.vicinity!r}")
    for key, v in (("gan.ccgan.sigma", cfg.gan.ccgan.sigma), ("gan.ccgan.kappa", cfg.gan.ccgan.kappa)):
        if v is not None and v <= 0:
            bad(key, f"must be > 0 or null (rule of thumb), got {v}")
    if not 0.0 < cfg.gan.ccgan.threshold < 1.0:
        bad("gan.ccgan.threshold", f"must be in (0, 1), got {cfg.gan.ccgan.threshold}")
    if cfg.fakes.n_labels < 2:
        bad("fakes.n_labels", f"must be >= 2 (a grid over the label range), got {cfg.fakes.n_labels}")
    if cfg.fakes.n_per_label < 1:
        bad("fakes.n_per_label", f"must be >= 1, got {cfg.fakes.n_per_label}")
    if cfg.student.mode not in ("scratch", "finetune"):
        bad("student.mode", f"must be scratch or finetune, got {cfg.student.mode!r}")
    if cfg.student.fake_ratio < 0:
        bad("student.fake_ratio", f"must be >= 0, got {cfg.student.fake_ratio}")
    _validate_source(cfg, bad)
    if importlib.util.find_spec("torch") is not None:  # a serving-only install trains nothing: the zoo and
        _validate_models(cfg, bad)                      # the distillers (nn.Modules) cannot load there
        _validate_methods(cfg, bad)
    if cfg.data.n_per_class is not None and cfg.data.n_per_class < 1:
        bad("data.n_per_class", f"must be >= 1 or null, got {cfg.data.n_per_class}")
    if cfg.data.render.resolution not in RESOLUTIONS:
        bad("data.render.resolution", f"must be one of {', '.join(map(str, RESOLUTIONS))}, "
            f"got {cfg.data.render.resolution}")
    if cfg.data.resolution is not None and cfg.data.resolution not in RESOLUTIONS:
        bad("data.resolution", f"must be null (the source's own) or one of {', '.join(map(str, RESOLUTIONS))}, "
            f"got {cfg.data.resolution}")
    for key, sect in (("teacher", cfg.teacher), ("student", cfg.student)):
        if sect.steps < 1:
            bad(f"{key}.steps", f"must be >= 1, got {sect.steps}")
        if sect.batch_size < 2:
            bad(f"{key}.batch_size", f"must be >= 2, got {sect.batch_size}")
        if sect.lr <= 0:
            bad(f"{key}.lr", f"must be > 0, got {sect.lr}")
    for key, rng in (("data.render.yaw_range", cfg.data.render.yaw_range),
                     ("data.render.elevation_range", cfg.data.render.elevation_range),
                     ("data.render.scale_range", cfg.data.render.scale_range),
                     ("data.render.ambient_range", cfg.data.render.ambient_range),
                     ("data.rc.elevation_range", cfg.data.rc.elevation_range)):
        if len(rng) != 2 or rng[0] > rng[1]:
            bad(key, f"must be [low, high] with low <= high, got {rng}")
    if cfg.fakes.n_per_class < 1:
        bad("fakes.n_per_class", f"must be >= 1, got {cfg.fakes.n_per_class}")
    if not 0.0 <= cfg.subsample.holdout < 1.0:
        bad("subsample.holdout", f"must be in [0, 1), got {cfg.subsample.holdout}")
    if not 0.0 < cfg.subsample.m_quantile <= 1.0:
        bad("subsample.m_quantile", f"must be in (0, 1], got {cfg.subsample.m_quantile}")
    if cfg.subsample.dre_patience is not None and cfg.subsample.dre_patience < 1:
        bad("subsample.dre_patience", f"must be >= 1 or null (no early stopping), got {cfg.subsample.dre_patience}")
    if cfg.subsample.dre_weight_decay < 0:
        bad("subsample.dre_weight_decay", f"must be >= 0, got {cfg.subsample.dre_weight_decay}")
    if cfg.subsample.dre_lambda < 0:
        bad("subsample.dre_lambda", f"must be >= 0, got {cfg.subsample.dre_lambda}")
    for key, v in (("subsample.dre_steps", cfg.subsample.dre_steps), ("subsample.n_fake_train",
                   cfg.subsample.n_fake_train), ("subsample.max_draw_factor",
                   cfg.subsample.max_draw_factor),
                   ("subsample.dre_batch_size", cfg.subsample.dre_batch_size),
                   ("extractor.steps", cfg.extractor.steps), ("extractor.feat_dim", cfg.extractor.feat_dim),
                   ("quality.n_fakes", cfg.quality.n_fakes), ("quality.n_windows", cfg.quality.n_windows)):
        if v < 1:
            bad(key, f"must be >= 1, got {v}")
    if not 0.0 < cfg.quality.window <= 1.0:
        bad("quality.window", f"must be in (0, 1] (a fraction of the label range), got {cfg.quality.window}")
    if cfg.gan.iterations < 1:
        bad("gan.iterations", f"must be >= 1, got {cfg.gan.iterations}")
    if cfg.gan.score_every < 0:
        bad("gan.score_every", f"must be >= 0 (0 = no checks), got {cfg.gan.score_every}")
    if cfg.gan.score_n < 1:
        bad("gan.score_n", f"must be >= 1, got {cfg.gan.score_n}")
    if cfg.gan.stop_patience is not None and cfg.gan.stop_patience < 1:
        bad("gan.stop_patience", f"must be >= 1 or null (never stop early), got {cfg.gan.stop_patience}")
    if cfg.gan.stop_patience is not None and cfg.gan.score_every == 0:
        bad("gan.stop_patience", "needs gan.score_every > 0 (the stop watches the label score)")
    if cfg.gan.target_score is not None and not 0.0 < cfg.gan.target_score <= 2.0:
        bad("gan.target_score", f"must be in (0, 2] (the label score relative to the teacher's) or null, "
            f"got {cfg.gan.target_score}")
    if cfg.gan.target_score is not None and cfg.gan.score_every == 0:
        bad("gan.target_score", "needs gan.score_every > 0 (the target is a label score)")
    if cfg.gan.max_minutes is not None and not 0.0 < cfg.gan.max_minutes < float("inf"):
        bad("gan.max_minutes", f"must be > 0 and finite, or null (no time budget), got {cfg.gan.max_minutes}")
    if cfg.fakes.min_relative_score is not None and not 0.0 <= cfg.fakes.min_relative_score <= 2.0:
        bad("fakes.min_relative_score", f"must be in [0, 2], got {cfg.fakes.min_relative_score}")
    if cfg.tracking.promotion_margin < 0:
        bad("tracking.promotion_margin", f"must be >= 0, got {cfg.tracking.promotion_margin}")
    if cfg.serve.providers not in ("auto", "cpu", "cuda"):
        bad("serve.providers", f"must be auto, cpu or cuda, got {cfg.serve.providers!r}")
    for key, v in (("serve.port", cfg.serve.port), ("serve.max_batch", cfg.serve.max_batch),
                   ("serve.max_body_mb", cfg.serve.max_body_mb), ("serve.max_in_flight", cfg.serve.max_in_flight),
                   ("serve.body_timeout_s", cfg.serve.body_timeout_s)):
        if v <= 0:
            bad(key, f"must be > 0, got {v}")


def _validate_source(cfg: Config, bad: typing.Callable[[str, str], None]) -> None:
    """Registry names (data source, architectures) are checked when the config is read, not when
    the stage that uses them starts."""
    from cgankd.base.registry import unknown
    from cgankd.data.sources import SOURCES

    if cfg.data.source != "auto" and cfg.data.source not in SOURCES:
        bad("data.source", f"{cfg.data.source!r}: {unknown(cfg.data.source, [*SOURCES, 'auto'])}")


def _validate_models(cfg: Config, bad: typing.Callable[[str, str], None]) -> None:
    from cgankd.base.registry import unknown
    from cgankd.models import MODELS

    for key, arch in (("teacher.arch", cfg.teacher.arch), ("student.arch", cfg.student.arch)):
        if arch not in MODELS:
            bad(key, f"{arch!r}: {unknown(arch, MODELS)}")


def _validate_methods(cfg: Config, bad: typing.Callable[[str, str], None]) -> None:
    from cgankd.kd import DISTILLERS, parse_method

    methods = cfg.student.methods
    for m in methods:
        try:
            method = parse_method(m, DISTILLERS.names())
        except ValueError as exc:
            bad("student.methods", str(exc))
        if method.distiller == "vkd" and not task_of(cfg.task).categorical:
            bad("student.methods", f"{m}: VKD applies to classification only (no soft distribution of a scalar)")
        if method.fakes and cfg.student.mode == "finetune" and method.distiller not in methods:
            bad("student.methods", f"{m} fine-tunes the {method.distiller} student: list {method.distiller} too "
                "(or set student.mode=scratch)")
    if "nokd" not in methods:
        bad("student.methods", "must include nokd (the baseline every comparison needs)")
    if len(set(methods)) != len(methods):
        bad("student.methods", f"lists a method twice: {methods}")
    if cfg.student.fakes is not None and Path(cfg.student.fakes).suffix not in (".npz", ".h5", ".hdf5"):
        bad("student.fakes", f"must be null (this pipeline's fakes) or a .npz/.h5 fake set, got {cfg.student.fakes!r}")
    if cfg.student.tag is not None and (not cfg.student.tag or "/" in cfg.student.tag):
        bad("student.tag", f"must be a folder name (no '/'), got {cfg.student.tag!r}")
    if cfg.kd.temperature <= 0:
        bad("kd.temperature", f"must be > 0, got {cfg.kd.temperature}")
    if not 0.0 <= cfg.kd.alpha <= 1.0:
        bad("kd.alpha", f"must be in [0, 1], got {cfg.kd.alpha}")
    if cfg.kd.beta < 0:
        bad("kd.beta", f"must be >= 0, got {cfg.kd.beta}")
    for key, v in (("vkd.steps", cfg.vkd.steps), ("vkd.batch_size", cfg.vkd.batch_size),
                   ("vkd.z_dim", cfg.vkd.z_dim), ("vkd.views", cfg.vkd.views)):
        if v < 1:
            bad(key, f"must be >= 1, got {v}")


PROFILES_DIR = "profiles"


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``, section by section (a leaf of ``top`` replaces the whole value)."""
    out = dict(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read_yaml(p: Path, what: str) -> dict[str, Any]:
    if not p.is_file():
        raise CgankdError(str(p), f"{what} not found")
    try:
        tree = safe_yaml(p.read_text(), str(p)) or {}
    except yaml.YAMLError as exc:
        raise CgankdError(str(p), f"not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(tree, dict):
        raise CgankdError(str(p), "top level must be a mapping")
    return tree


def profile_path(name: str, base: Path) -> Path:
    """``profiles/<name>.yaml`` beside the params file, or a .yaml path given as the name."""
    if name.endswith((".yaml", ".yml")):
        return Path(name)
    p = base / PROFILES_DIR / f"{name}.yaml"
    if not p.is_file():
        known = sorted(f.stem for f in (base / PROFILES_DIR).glob("*.yaml"))
        raise CgankdError("param profile", f"no profile {name!r} ({p}); known: {', '.join(known) or 'none'}")
    return p


def load_config(path: str | Path | None = "params.yaml", overrides: list[str] | None = None,
                runtime: bool = True) -> Config:
    """Read ``path`` (missing file = all defaults only when path is None), lay the profile named
    by the ``profile`` key (``profiles/<name>.yaml``) over it, then the overrides.
    ``runtime=False`` skips the device / compiler checks (and the torch import) for commands that
    train nothing: serve, predict, promote."""
    tree: dict[str, Any] = {}
    base = Path(".")
    if path is not None:
        tree = _read_yaml(Path(path), "params file")
        base = Path(path).parent
    top: dict[str, Any] = {}
    for text in overrides or []:
        key, value = parse_override(text)
        _set_dotted(top, key, value)
    name = top.get("profile", tree.get("profile"))
    if name is not None:
        if not isinstance(name, str) or not name:
            raise CgankdError("param profile", f"expected a profile name or null, got {name!r}")
        prof = _read_yaml(profile_path(name, base), "profile")
        if "profile" in prof:
            raise CgankdError(str(profile_path(name, base)), "a profile cannot name another profile")
        tree = _merge(tree, prof)
    cfg = _build(Config, _merge(tree, top), "")
    _validate(cfg, runtime)
    return cfg
