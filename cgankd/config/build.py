"""Building a typed section from a mapping: each key known (with "did you mean"), each value
type-checked and held to the constraint declared beside its field (``cgankd.base.checks``); and
``kd``, whose sections are the distillers' own settings (``cgankd.kd``)."""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import types
import typing
from typing import Any

from cgankd.base.checks import Constraint
from cgankd.base.errors import CgankdError


def field_type(tp: Any) -> tuple[Any, Constraint | None]:
    """``Annotated[T, constraint]`` -> (T, constraint); any other type -> (it, None)."""
    if typing.get_origin(tp) is typing.Annotated:
        base, *extras = typing.get_args(tp)
        return base, next((e for e in extras if hasattr(e, "problem")), None)
    return tp, None


def _nullable(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)


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
    if origin is dict:  # a section whose keys are registry names (kd.<distiller>): checked after the build
        if not isinstance(value, dict):
            raise CgankdError(f"param {key}", f"expected a mapping, got {value!r}")
        return value
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


def check_field(key: str, value: Any, hint: Any) -> Any:
    """``value`` of the field typed ``hint``: type-checked, then held to its constraint (each item
    of a list)."""
    tp, constraint = field_type(hint)
    value = _check_type(key, value, tp)
    if constraint is not None and value is not None:
        for v in value if isinstance(value, list) else [value]:
            problem = constraint.problem(v, _nullable(tp))
            if problem is not None:
                raise CgankdError(f"param {key}", problem)
    return value


def build(cls: type, data: dict[str, Any], prefix: str, base: Any = None) -> Any:
    if not isinstance(data, dict):
        raise CgankdError(f"param {prefix.rstrip('.') or '<root>'}", "expected a mapping")
    hints = typing.get_type_hints(cls, include_extras=True)
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
        tp, value = hints[f.name], data[f.name]
        if dataclasses.is_dataclass(tp):
            setattr(obj, f.name, build(tp, value, f"{prefix}{f.name}.", getattr(obj, f.name)))
        else:
            setattr(obj, f.name, check_field(f"{prefix}{f.name}", value, tp))
    return obj


def kd_sections(raw: dict[str, Any]) -> dict[str, Any]:
    """``kd``: one section per distiller that declares ``Settings`` (cgankd/kd/<name>.py), each built
    and checked like any section, its defaults where params.yaml is silent. Without torch (a serving
    install trains nothing) the distillers cannot load: the mapping stays as written."""
    if importlib.util.find_spec("torch") is None:
        return raw
    from cgankd.kd import DISTILLERS

    sections = {name: DISTILLERS.get(name).Settings for name in DISTILLERS.names() if DISTILLERS.get(name).Settings}
    for key in raw:
        if key not in sections:
            moved = [f"kd.{n}.{key}" for n, cls in sections.items() if key in {f.name for f in dataclasses.fields(cls)}]
            hint = f"a setting is now per distiller: {', '.join(moved)}; " if moved else ""
            close = difflib.get_close_matches(str(key), sections, n=1)
            hint += f"did you mean kd.{close[0]}? " if close and not moved else ""
            raise CgankdError(f"param kd.{key}", f"not a distiller with settings; {hint}known: {', '.join(sections)}")
    return {name: raw[name] if isinstance(raw.get(name), cls) else build(cls, raw.get(name) or {}, f"kd.{name}.")
            for name, cls in sections.items()}
