"""One typed, validated config built from params.yaml, its profile and ``-S dotted.key=value``
overrides: the schema (``sections``, ``schema``: dataclasses with each constraint beside its field),
the loader (``load``), the checks across fields (``validate``) and the JSON Schema for editors
(``json_schema``). Every error names the offending key. A section's class is imported from
``cgankd.config.sections``; the names below are the ones used across the package."""

from cgankd.config.load import load_config, parse_override
from cgankd.config.schema import Config
from cgankd.config.sections import RESOLUTIONS, CcganCfg, GanCfg, RenderCfg, TrainCfg

__all__ = ["RESOLUTIONS", "CcganCfg", "Config", "GanCfg", "RenderCfg", "TrainCfg", "load_config", "parse_override"]
