"""The checks a single field cannot make: finite numbers everywhere, names looked up in the
registries (data sources, the model zoo, the KD methods), ranges given as [low, high], settings
that need another one, and the runtime (device, precision, compile). Each field's own range or
choice is declared beside it (``cgankd.config.sections``) and checked as it is read."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

from cgankd.base.errors import CgankdError
from cgankd.config.schema import Config
from cgankd.task import task_of


def bad(key: str, problem: str) -> NoReturn:
    raise CgankdError(f"param {key}", problem)


def _numbers(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every number in the config, list items included."""
    for f in dataclasses.fields(obj):
        v, key = getattr(obj, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(v):
            yield from _numbers(v, key + ".")
        elif isinstance(v, dict):  # kd.<distiller>
            for name, section in v.items():
                if dataclasses.is_dataclass(section):
                    yield from _numbers(section, f"{key}.{name}.")
        elif isinstance(v, list):
            yield from ((key, x) for x in v if isinstance(x, (int, float)) and not isinstance(x, bool))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            yield key, v


def validate(cfg: Config, runtime: bool = True) -> None:
    for key, v in _numbers(cfg):  # NaN and infinity, also where no range is declared
        if not math.isfinite(v):
            bad(key, f"must be a finite number, got {v}")
    if runtime:  # device / precision / compile: checked before any stage writes a file
        from cgankd.compute.device import Runtime

        Runtime.from_config(cfg.device, cfg.precision, cfg.compile, cfg.compile_mode, cfg.memory_format)
    r = cfg.data.render
    for key, rng in (("data.render.yaw_range", r.yaw_range), ("data.render.elevation_range", r.elevation_range),
                     ("data.render.scale_range", r.scale_range), ("data.render.ambient_range", r.ambient_range),
                     ("data.rc.elevation_range", cfg.data.rc.elevation_range), ("gan.betas", cfg.gan.betas)):
        if len(rng) != 2 or (key != "gan.betas" and rng[0] > rng[1]):
            bad(key, f"must be [low, high] with low <= high, got {rng}" if key != "gan.betas"
                else f"must be two numbers [beta1, beta2], got {rng}")
    gan = cfg.gan
    if gan.stop_patience is not None and gan.score_every == 0:
        bad("gan.stop_patience", "needs gan.score_every > 0 (the stop watches the label score)")
    if gan.target_score is not None and gan.score_every == 0:
        bad("gan.target_score", "needs gan.score_every > 0 (the target is a label score)")
    if gan.ccgan.embedding == "y2h" and (gan.embed_dim < 32 or gan.embed_dim % 8):
        bad("gan.embed_dim", f"y2h's GroupNorm(8) needs a multiple of 8 from 32 up, got {gan.embed_dim} "
            "(below 32 it learned a constant: tests/test_label_embed.py)")
    if cfg.filter.net_init and not cfg.filter.net:
        bad("filter.net_init", "is a checkpoint of the filter network: set filter.net to its architecture")
    if cfg.extractor.feat_dim is None and cfg.extractor.ae != "paper":
        bad("extractor.feat_dim", "null (C x H x W) is the authors' autoencoder's: set extractor.ae: paper or a size")
    _validate_source(cfg)
    if importlib.util.find_spec("torch") is not None:  # a serving-only install trains nothing: the zoo and
        _validate_models(cfg)                           # the distillers (nn.Modules) cannot load there
        _validate_methods(cfg)
    st = cfg.student
    if st.fakes is not None and Path(st.fakes).suffix not in (".npz", ".h5", ".hdf5"):
        bad("student.fakes", f"must be null (this pipeline's fakes) or a .npz/.h5 fake set, got {st.fakes!r}")
    if st.tag is not None and (not st.tag or "/" in st.tag):
        bad("student.tag", f"must be a folder name (no '/'), got {st.tag!r}")


def _validate_source(cfg: Config) -> None:
    """Registry names (data source, architectures) are checked when the config is read, not when
    the stage that uses them starts."""
    from cgankd.base.registry import unknown
    from cgankd.data.sources import SOURCES

    if cfg.data.source != "auto" and cfg.data.source not in SOURCES:
        bad("data.source", f"{cfg.data.source!r}: {unknown(cfg.data.source, [*SOURCES, 'auto'])}")


def _validate_models(cfg: Config) -> None:
    from cgankd.base.registry import unknown
    from cgankd.models import MODELS

    archs = [("teacher.arch", cfg.teacher.arch), ("student.arch", cfg.student.arch),
             ("extractor.arch", cfg.extractor.arch), ("gan.ccgan.embed_arch", cfg.gan.ccgan.embed_arch),
             *([("filter.net", cfg.filter.net)] if cfg.filter.net is not None else [])]
    for key, arch in archs:
        if arch not in MODELS:
            bad(key, f"{arch!r}: {unknown(arch, MODELS)}")


def _validate_methods(cfg: Config) -> None:
    from cgankd.kd import DISTILLERS, parse_method

    methods = cfg.student.methods
    for m in methods:
        try:
            method = parse_method(m, DISTILLERS.names())
        except ValueError as exc:
            bad("student.methods", str(exc))
        if method.distiller == "vkd" and not task_of(cfg.task).categorical:
            bad("student.methods", f"{m}: VKD applies to classification only (no soft distribution of a scalar)")
        if method.fakes and cfg.student.mode == "finetune" and cfg.student.finetune_from == "own" \
                and method.distiller not in methods:
            bad("student.methods", f"{m} fine-tunes the {method.distiller} student: list {method.distiller} too "
                "(or set student.mode=scratch)")
    if "nokd" not in methods:
        bad("student.methods", "must include nokd (the baseline every comparison needs)")
    if len(set(methods)) != len(methods):
        bad("student.methods", f"lists a method twice: {methods}")
