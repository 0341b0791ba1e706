"""The champion/challenger rule, apart from MLflow so it can be tested on numbers alone."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def decide(metric_name: str, new: float, champion: float | None, champion_version: str | None,
           higher_is_better: bool, margin: float) -> Decision:
    """Promote when there is no champion, or when the new metric beats the champion's by *more
    than* ``margin`` (in the metric's unit; accuracy up, MAE down)."""
    if champion is None or math.isnan(champion):
        return Decision(True, "first version" if champion is None else "champion has no test metric")
    gain = new - champion if higher_is_better else champion - new
    versus = f"{metric_name} {new:.4g} vs champion v{champion_version} {champion:.4g}"
    if gain > margin:
        return Decision(True, f"{versus}: improves by {gain:.4g} > margin {margin:g}")
    return Decision(False, f"{versus}: improvement {gain:.4g} does not exceed margin {margin:g}")
