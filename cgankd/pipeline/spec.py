"""The stage table: every pipeline stage declared once, in pipeline order.

An entry says what the stage is (its function is ``run`` in ``cgankd/stages/<name>.py``), when it
runs (``when``: always, or only when a method uses this pipeline's fakes or VKD), whether it runs
once per student method and under torchrun, the files it reads and writes as keys of the output
layout (``cgankd.config.layout.PATHS``) and the params it reads. Everything else is derived from
it: the CLI's stage subcommands, ``cgankd run`` and the Prefect flow (``stage_calls``), dvc.yaml
(``cgankd.pipeline.dvc_yaml``), the params a stage's MLflow run logs, and the "reuse or run" of
``compare``, ``ablate`` and the bench scripts (``cgankd.pipeline.runner.reuse_or_run``).

Adding a stage: one entry here and one ``cgankd/stages/<name>.py`` with ``run(cfg, tracker)``.
Importable without torch: the CLI's parser reads the names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

from cgankd.base.errors import CgankdError
from cgankd.base.registry import unknown

if TYPE_CHECKING:
    from cgankd.config import Config

RUNTIME = ("profile", "seed", "device", "precision", "compile", "compile_mode", "memory_format", "threads")
Deps = tuple[str, ...] | Callable[["Config", str | None], tuple[str, ...]]


def always(cfg: Config) -> bool:
    return True


def uses_fakes(cfg: Config) -> bool:
    return cfg.uses_fakes


def uses_vkd(cfg: Config) -> bool:
    return cfg.uses_vkd


def uses_filter_net(cfg: Config) -> bool:
    return cfg.uses_filter_net


@dataclass(frozen=True)
class Stage:
    """One pipeline stage. Paths are layout keys (``config.layout.PATHS``); a per-method key
    (``student_dir``, ``student_metrics``, ...) of a stage that is not per method stands for every
    student's file, ``"student:cgankd"`` for one method's."""

    name: str
    params: tuple[str, ...]  # the params.yaml keys it reads (DVC params, the MLflow run's params)
    deps: Deps = ()  # what it reads; a function of (cfg, method) when that depends on them
    outs: tuple[str, ...] = ()  # what it writes, cached by DVC (pushed to the remote, pulled by a teammate)
    plots: tuple[str, ...] = ()  # DVC plots; also logged to its MLflow run under plots/
    artifacts: tuple[str, ...] = ()  # more of its files logged to its MLflow run (pictures under plots/)
    metrics: tuple[str, ...] = ()  # the DVC metrics file (evaluate's headline)
    done: str | None = None  # the file that says it ran in a folder; one under metrics/ is read back
    when: Callable[[Config], bool] = always
    per_method: bool = False  # once per student method (train-student --method M)
    ddp: bool = False  # trains a network: may run under torchrun
    upstream: bool = False  # shared by every student: compare and ablate run it once per seed and teacher
    reads_data_root: bool = False  # your data (data.root) is a dependency
    tracks: bool = False  # its output is what it tells the tracking server: its tracking code counts

    @property
    def module(self) -> str:
        return f"cgankd.stages.{self.name.replace('-', '_')}"

    @property
    def run(self) -> Callable[..., dict[str, Any]]:
        """The stage function ``run(cfg, tracker=None, **kwargs) -> dict`` (imported on first use)."""
        return import_module(self.module).run

    def deps_for(self, cfg: Config, method: str | None) -> tuple[str, ...]:
        return self.deps(cfg, method) if callable(self.deps) else self.deps


def student_deps(cfg: Config, method: str | None) -> tuple[str, ...]:
    """A student reads the teacher; with fakes the fake set and its verdict (unless student.fakes
    names another set), with VKD the virtual-knowledge generator, fine-tuned its distiller's model."""
    from cgankd.kd.methods import method_distiller, method_uses_fakes

    deps = ["prepared", "teacher"]
    if method_uses_fakes(str(method)) and cfg.student.fakes is None:
        deps += ["fakes", "fakes_metrics"]  # the verdict: student.skip_weak_fakes
    if method_distiller(str(method)) == "vkd":
        deps.append("vkd")
    if method_uses_fakes(str(method)) and cfg.student.mode == "finetune":
        deps.append(f"student:{method_distiller(str(method))}" if cfg.student.finetune_from == "own"
                    else "student_last:nokd")  # the student it starts from
    return tuple(deps)


def int8_calibration(cfg: Config) -> tuple[str, ...]:
    """export.int8 calibrates on the training split and the kept fakes."""
    if not cfg.export.int8:
        return ()
    return ("prepared", "fakes") if cfg.uses_fakes and cfg.student.fakes is None else ("prepared",)


def verdict(cfg: Config) -> tuple[str, ...]:
    return ("fakes_metrics",) if cfg.uses_fakes else ()


TABLE: tuple[Stage, ...] = (
    Stage(
        name="prepare",
        params=("profile", "task", "data"),
        outs=("prepared",),
        plots=("data_grid",),
        artifacts=("prepared_meta",),
        done="prepared_meta",
        reads_data_root=True,
        upstream=True,
    ),
    Stage(
        name="train-teacher",
        params=(*RUNTIME, "teacher"),
        deps=("prepared",),
        outs=("teacher_dir", "teacher_metrics"),
        done="teacher_metrics",
        ddp=True,
        upstream=True,
    ),
    Stage(
        name="train-filter-net",
        params=(*RUNTIME, "teacher", "filter.net", "filter.net_init"),
        deps=("prepared",),
        outs=("filter_net_dir", "filter_net_metrics"),
        done="filter_net_metrics",
        when=uses_filter_net,
        ddp=True,
        upstream=True,
    ),
    Stage(
        name="train-extractor",
        params=(*RUNTIME, "task", "data.source", "extractor", "subsample.enabled", "subsample.holdout",
                "quality.n_windows", "quality.window"),
        deps=("prepared",),
        outs=("extractor_dir", "extractor_metrics"),
        artifacts=("extractor_history",),
        done="extractor_metrics",
        when=uses_fakes,
        ddp=True,
        upstream=True,
    ),
    Stage(
        name="train-gan",
        params=(*RUNTIME, "gan"),
        deps=("prepared", "teacher", "teacher_metrics"),
        outs=("gan_dir",),
        artifacts=("gan_quality", "gan_quality_plot", "gan_samples"),
        done="gan",
        when=uses_fakes,
        ddp=True,
        upstream=True,
    ),
    Stage(
        name="make-fakes",
        params=(*RUNTIME, "task", "data.source", "gan.z_dim", "fakes", "subsample", "filter", "adjust", "quality"),
        deps=lambda cfg, _: ("prepared", "gan_dir", "teacher", "teacher_metrics", "extractor_dir",
                             *(("filter_net",) if cfg.filter.net else ())),
        outs=("fakes_dir", "fakes_metrics"),
        plots=("fakes_quality_plot", "fakes_score_plot", "fakes_score_csv", "fakes_intra_fid_csv"),
        artifacts=("fakes_counts", "fakes_quality", "fakes_grid"),
        done="fakes_metrics",
        when=uses_fakes,
        upstream=True,
    ),
    Stage(
        name="train-vkd",
        params=(*RUNTIME, "kd.vkd", "vkd"),
        deps=("prepared", "teacher"),
        outs=("vkd_dir", "vkd_metrics"),
        done="vkd_metrics",
        when=uses_vkd,
        upstream=True,
    ),
    Stage(
        name="train-student",
        params=(*RUNTIME, "task", "student", "kd"),
        deps=student_deps,
        outs=("student_dir", "student_metrics"),
        done="student_metrics",
        per_method=True,
        ddp=True,
    ),
    Stage(
        name="export",
        params=("profile", "seed", "task", "export", "serve.providers", "student.methods", "student.tag"),
        deps=lambda cfg, _: ("student_dir", "student_metrics", *int8_calibration(cfg)),
        outs=("export_dir",),
        artifacts=("parity",),
    ),
    Stage(
        name="evaluate",
        params=(*RUNTIME, "task", "student", "teacher.arch", "export"),
        deps=lambda cfg, _: ("prepared", "teacher_metrics", "student_metrics", *verdict(cfg), "parity", "teacher",
                             "student_dir", *(("onnx", "onnx_int8") if cfg.export.int8 else ())),
        outs=("report", "metrics"),
        plots=("evaluation_plot", "per_label"),
        metrics=("headline",),
        artifacts=("report",),
    ),
    Stage(
        name="register",
        params=("profile", "task", "data.source", "tracking", "export.int8"),
        deps=lambda cfg, _: ("onnx", "metrics", "parity", *verdict(cfg),  # the model card's numbers
                             *(("onnx_int8",) if cfg.export.int8 else ())),
        outs=("registry",),
        tracks=True,
    ),
)
STAGE_ORDER = tuple(s.name for s in TABLE)
DDP_STAGES = tuple(s.name for s in TABLE if s.ddp)
_BY_NAME = {s.name: s for s in TABLE}


def stage(name: str) -> Stage:
    if name not in _BY_NAME:
        raise CgankdError(f"stage {name!r}", unknown(name, STAGE_ORDER))
    return _BY_NAME[name]


def ordered_methods(methods: list[str]) -> list[str]:
    """Methods without fakes first (fine-tune mode starts the others from them), in the listed
    order within each group."""
    from cgankd.kd.methods import method_uses_fakes

    return sorted(methods, key=method_uses_fakes)


def stage_calls(cfg: Config) -> list[tuple[str, dict[str, Any]]]:
    """(stage, kwargs) in pipeline order: the stages ``cfg`` needs, a per-method stage once per method."""
    calls: list[tuple[str, dict[str, Any]]] = []
    for s in TABLE:
        if s.when(cfg):
            calls += [(s.name, {"method": m}) for m in ordered_methods(cfg.student.methods)] if s.per_method \
                else [(s.name, {})]
    return calls


def stage_label(name: str, kwargs: dict[str, Any]) -> str:
    """The run name of a stage call: ``train-student[cgankd]`` for a per-method stage."""
    return name + (f"[{kwargs['method']}]" if "method" in kwargs else "")


def upstream_calls(cfg: Config) -> list[str]:
    """The stages every student of ``cfg`` shares, in order (what compare and ablate run once)."""
    return [name for name, _ in stage_calls(cfg) if stage(name).upstream]


def pipeline_line() -> str:
    """The stages in order, as docs/pipeline.md draws them (a test keeps the page equal to this)."""
    return " -> ".join(s.name + (" (one per method)" if s.per_method else "") for s in TABLE)
