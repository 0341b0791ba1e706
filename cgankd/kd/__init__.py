"""Distillers: one method per file, all behind ``Distiller`` (see ``base.py``), in ``DISTILLERS``.

A training method is a distiller name, optionally prefixed ``cgankd+`` to train on real + the
processed fake set (``cgankd`` alone = ``cgankd+nokd``): see ``methods.py``.
"""

from cgankd.kd import blkd, fitnet, nokd, vkd  # noqa: F401  (register)
from cgankd.kd.base import DISTILLERS, Distiller
from cgankd.kd.methods import Method, parse_method

__all__ = ["DISTILLERS", "Distiller", "Method", "parse_method"]
