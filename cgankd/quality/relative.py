"""The fakes' label score relative to the teacher's own metric on real validation images: the
number that predicts whether cGAN-KD can help (docs/results.md, "When the fakes are worth
using"). 1.0 means the teacher labels the fakes as well as real images; accuracy: fakes / real;
MAE (lower is better): real / fakes. So higher is better for both tasks.
"""

from __future__ import annotations

import math


def relative_score(score: float, teacher: float, higher_is_better: bool) -> float:
    if not (math.isfinite(score) and math.isfinite(teacher)) or teacher <= 0 or score < 0:
        return float("nan")
    if higher_is_better:
        return score / teacher
    return teacher / score if score > 0 else float("inf")


def absolute_score(relative: float, teacher: float, higher_is_better: bool) -> float:
    """The label score (accuracy %, or MAE) that ``relative`` stands for."""
    return relative * teacher if higher_is_better else teacher / relative
