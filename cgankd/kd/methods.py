"""Method names: a distiller, on real data alone or (``cgankd+`` prefix) on real + processed fakes.

``nokd``, ``blkd``, ``fitnet``, ``vkd``; ``cgankd`` (= cgankd+nokd), ``cgankd+blkd``, ... So
cGAN-KD combined with any distiller is a configuration, not code.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "cgankd"


@dataclass(frozen=True)
class Method:
    name: str
    distiller: str
    fakes: bool  # fine-tune mode starts a method with fakes from its distiller's checkpoint


def parse_method(name: str, distillers: list[str]) -> Method:
    """``"cgankd+blkd"`` -> Method(distiller="blkd", fakes=True); ValueError names the choices."""
    distiller, fakes = method_distiller(name), method_uses_fakes(name)
    if distiller in distillers and name != f"{PREFIX}+nokd":
        return Method(name, distiller, fakes)
    known = [*distillers, PREFIX, *(f"{PREFIX}+{d}" for d in distillers if d != "nokd")]
    raise ValueError(f"unknown method {name!r}; choose from {', '.join(known)}")


def method_uses_fakes(name: str) -> bool:
    return name == PREFIX or name.startswith(f"{PREFIX}+")


def method_distiller(name: str) -> str:
    return "nokd" if name == PREFIX else name.removeprefix(f"{PREFIX}+")
