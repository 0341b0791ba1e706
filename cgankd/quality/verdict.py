"""The verdict before the students spend their budget: are the raw fakes good enough for cGAN-KD
to be expected to help, and if not, what GAN budget would likely make them so.

Evidence is the raw fakes' relative label score (cgankd/quality/relative.py) against a threshold
(``fakes.min_relative_score``, measured in docs/results.md); the suggestion extrapolates the GAN's
own quality curve (``gan/quality.csv``: the relative score at each check and the training
minutes so far) linearly over its second half. Curves flatten, so the suggested cap is twice the
extrapolation; it is a hint, not a promise.

``line`` is what the files say (metrics/fakes.json, report.md): a function of the training
arithmetic alone, so the fp32 CPU outputs stay bit-reproducible. The wall-clock estimate for the
suggested cap (``minutes``, from the curve's minutes per iteration on this machine) is added to
the printed line and the MLflow tag only (``full``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Verdict:
    weak: bool
    relative: float
    threshold: float
    line: str
    slope_per_1k: float | None = None  # relative score per 1,000 iterations, second half of the curve
    minutes: float | None = None  # wall-clock estimate for the suggested cap (this machine)

    @property
    def full(self) -> str:
        """``line`` with the time budget it suggests on this machine."""
        if self.minutes is None:
            return self.line
        gpu = " (a GPU budget: docs/gpu.md)" if self.minutes > 120 else ""
        return f"{self.line} -S gan.max_minutes={self.minutes:.0f}{gpu}"

    def metrics(self) -> dict[str, float | str]:
        out: dict[str, float | str] = {"raw_relative_label_score": self.relative, "weak_fakes": float(self.weak),
                                       "min_relative_score": self.threshold, "verdict": self.line}
        if self.slope_per_1k is not None:
            out["gan_relative_score_per_1k_iterations"] = self.slope_per_1k
        if self.minutes is not None:
            out["suggested_gan_max_minutes"] = self.minutes
        return out


def trend(steps: list[int], relative: list[float]) -> float | None:
    """Least-squares slope per 1,000 iterations over the second half of the checks (at least two)."""
    pts = [(s, r) for s, r in zip(steps, relative, strict=True) if math.isfinite(r)]
    pts = pts[len(pts) // 2:] if len(pts) >= 4 else pts
    if len(pts) < 2 or pts[0][0] == pts[-1][0]:
        return None
    s, r = np.array(pts, dtype=float).T
    return float(np.polyfit(s / 1000.0, r, 1)[0])


def _round_up(x: float, to: float) -> float:
    return to * math.ceil(x / to)


def judge(relative: float, threshold: float, iterations: int, steps: list[int], curve: list[float],
          minutes: list[float], what: str) -> Verdict:
    """``what`` says the score in the task's words (e.g. "teacher accuracy 12.0% on fakes vs 75.9%
    on real images"); ``steps``/``curve``/``minutes``: the GAN's checks (may be empty)."""
    slope = trend(steps, curve)
    per_1k = 1000.0 * minutes[-1] / steps[-1] if minutes and steps and steps[-1] > 0 else None
    head = f"relative label score {relative:.2f} ({what}) after {iterations} GAN iterations"
    if math.isfinite(relative) and relative >= threshold:
        return Verdict(False, relative, threshold,
                       f"fakes: strong enough for cGAN-KD to help, not sure to (docs/results.md): {head}, "
                       f"at or above {threshold:.2f}", slope)
    rise = ("no trend yet (too few checks)" if slope is None else
            f"{'rising' if slope > 0 else 'not rising'}: {slope:+.3f} per 1k iterations over the last checks")
    mins = None
    if slope is None:
        hint = (f"train longer with checks (gan.score_every) to see the trend; try -S gan.target_score="
                f"{threshold:.2f} -S gan.iterations={_round_up(4 * max(iterations, 1000), 1000):.0f}")
    elif slope <= 0:
        hint = ("more iterations at this setting are unlikely to fix it (try gan.d_steps=4, or a GPU budget: "
                "docs/gpu.md)")
    else:
        cap = _round_up(iterations + 2.0 * 1000.0 * (threshold - relative) / slope, 1000)
        hint = f"try -S gan.target_score={threshold:.2f} -S gan.iterations={cap:.0f}"
        mins = _round_up(cap * per_1k / 1000.0, 10) if per_1k is not None else None
    line = (f"fakes: too weak for cGAN-KD to be expected to help: {head}, below {threshold:.2f}, {rise}; {hint}")
    return Verdict(True, relative, threshold, line, slope, mins)
