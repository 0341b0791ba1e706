"""Reading a config: params.yaml, the profile it names (``profiles/<name>.yaml``) laid over it, then
``-S dotted.key=value`` overrides; each value type-checked and held to the constraint declared
beside its field, then the checks across fields (``cgankd.config.validate``). Every error is one
line naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cgankd.base.errors import CgankdError
from cgankd.config.build import build, kd_sections
from cgankd.config.schema import Config
from cgankd.config.validate import validate

PROFILES_DIR = "profiles"


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
    cfg = build(Config, _merge(tree, top), "")
    cfg.kd = kd_sections(cfg.kd)
    validate(cfg, runtime)
    return cfg
