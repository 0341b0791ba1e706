"""The whole config: the sections of params.yaml (``cgankd.config.sections``) under the root
keys, and what is derived from them: the data source and the filter, adjustment, subsampling and
verdict defaults of the task (``cgankd.task``), the runtime, the output paths."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from cgankd.base.checks import OneOf, Range
from cgankd.config.build import kd_sections
from cgankd.config.sections import (
    AdjustCfg,
    DataCfg,
    ExportCfg,
    ExtractorCfg,
    FakesCfg,
    FilterCfg,
    GanCfg,
    QualityCfg,
    ServeCfg,
    StudentCfg,
    SubsampleCfg,
    TeacherCfg,
    TrackingCfg,
    VKDCfg,
)
from cgankd.task import TASKS, task_of

if TYPE_CHECKING:
    from cgankd.compute.device import Runtime


@dataclass
class Config:
    profile: str | None = None
    seed: Annotated[int, Range(ge=0)] = 0
    task: Annotated[str, OneOf(*TASKS)] = "classification"
    out_dir: str = "artifacts"
    threads: Annotated[int | None, Range(ge=0, note="torch's default")] = None
    device: str = "auto"  # auto | cpu | cuda | cuda:N, checked with the runtime
    precision: Annotated[str, OneOf("fp32", "bf16", "fp16", "auto")] = "fp32"
    memory_format: Annotated[str, OneOf("auto", "channels_last", "contiguous")] = "auto"
    compile: bool = False
    compile_mode: Annotated[str, OneOf("default", "reduce-overhead", "max-autotune")] = "default"
    data: DataCfg = field(default_factory=DataCfg)
    teacher: TeacherCfg = field(default_factory=lambda: TeacherCfg(arch="resnet20", steps=1000))
    student: StudentCfg = field(default_factory=StudentCfg)
    kd: dict[str, Any] = field(default_factory=lambda: kd_sections({}))  # kd.<distiller>: its own Settings (cgankd.kd)
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
        embedded data (docs/results.md, the cDR-RS ablation): on for classification, off for regression."""
        if self.subsample.enabled is not None:
            return self.subsample.enabled
        return task_of(self.task).subsample

    @property
    def runtime(self) -> Runtime:
        """Device, precision and compile, checked (a missing GPU or compiler is a one-line error)."""
        from cgankd.compute.device import Runtime

        return Runtime.from_config(self.device, self.precision, self.compile, self.compile_mode, self.memory_format)

    @property
    def model_name(self) -> str:
        """The registered model: ``tracking.model_name``, or ``cgankd-<source>``."""
        return self.tracking.model_name or f"cgankd-{self.source}"

    def path(self, *parts: str) -> Path:
        return Path(self.out_dir).joinpath(*parts)

    @property
    def uses_fakes(self) -> bool:
        """Some method trains on this pipeline's own fake set (so the GAN stages must run)."""
        from cgankd.kd.methods import method_uses_fakes

        return self.student.fakes is None and any(method_uses_fakes(m) for m in self.student.methods)

    @property
    def uses_filter_net(self) -> bool:
        """A network apart from the teacher filters and relabels this pipeline's fakes (``filter.net``)."""
        return self.uses_fakes and self.filter.net is not None

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
