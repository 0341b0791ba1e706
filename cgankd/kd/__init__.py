"""Distillers: one method per file, all behind ``Distiller`` (see ``base.py``), in ``DISTILLERS``.

A training method is a distiller name, optionally prefixed ``cgankd+`` to train on real + the
processed fake set (``cgankd`` alone = ``cgankd+nokd``): see ``methods.py``. Every module of this
package is imported here, so a new distiller is one new file (its params section ``kd.<name>``
aside): the CLI, the config, the sweeps and the reports take their lists and labels from the
registry.
"""

from importlib import import_module
from pkgutil import iter_modules

from cgankd.kd.base import DISTILLERS, Distiller
from cgankd.kd.methods import PREFIX, Method, parse_method

for _module in iter_modules(__path__):
    import_module(f"{__name__}.{_module.name}")  # each registers its distiller


def all_methods() -> list[str]:
    """Every distiller on real data (``nokd`` first), then each with the fakes: what ``cgankd compare`` runs
    by default."""
    others = [d for d in DISTILLERS.names() if d != "nokd"]
    return ["nokd", *others, PREFIX, *(f"{PREFIX}+{d}" for d in others)]


def label(method: str) -> str:
    """``cgankd+blkd`` -> ``cGAN-KD + BLKD``: the distillers' own labels."""
    parts = [p for p in method.split("+") if p]
    return " + ".join("cGAN-KD" if p == PREFIX else DISTILLERS.get(p).label if p in DISTILLERS else p for p in parts)


__all__ = ["DISTILLERS", "Distiller", "Method", "all_methods", "label", "parse_method"]
