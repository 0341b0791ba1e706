"""One typed, validated config built from params.yaml, its profile and ``-S dotted.key=value``
overrides: the schema (``sections``, ``schema``: dataclasses with each constraint beside its field),
the loader (``load``), the checks across fields (``validate``) and the JSON Schema for editors
(``json_schema``). Every error names the offending key."""

from cgankd.config.load import PROFILES_DIR, load_config, parse_override, profile_path, safe_yaml
from cgankd.config.schema import Config
from cgankd.config.sections import (
    RESOLUTIONS,
    AdjustCfg,
    CcganCfg,
    DataCfg,
    ExportCfg,
    ExtractorCfg,
    FakesCfg,
    FilterCfg,
    GanCfg,
    KDCfg,
    QualityCfg,
    RcCfg,
    RenderCfg,
    ServeCfg,
    StudentCfg,
    SubsampleCfg,
    TrackingCfg,
    TrainCfg,
    VKDCfg,
)

__all__ = ["PROFILES_DIR", "RESOLUTIONS", "AdjustCfg", "CcganCfg", "Config", "DataCfg", "ExportCfg", "ExtractorCfg",
           "FakesCfg", "FilterCfg", "GanCfg", "KDCfg", "QualityCfg", "RcCfg", "RenderCfg", "ServeCfg", "StudentCfg",
           "SubsampleCfg", "TrackingCfg", "TrainCfg", "VKDCfg", "load_config", "parse_override", "profile_path",
           "safe_yaml"]
