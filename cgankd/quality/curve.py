"""The GAN's quality curve, ``gan/quality.csv``: at each check the teacher's label score of the
EMA generator's fakes, the same relative to the teacher's own validation metric
(cgankd/quality/relative.py), the training minutes so far, on the last row why training
stopped (empty while it trains), and on each check that was a new best its relative score on the
confirming fakes (cgankd/gan/watch.py). train-gan writes it as it goes; make-fakes reads it for the
verdict's budget hint.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from cgankd.quality.relative import relative_score
from cgankd.task import task_of


def curve_csv(scores: list[tuple[int, float]], task: str, reference: float, minutes: dict[int, float],
              stop: str | None, confirmed: list[tuple[int, float]] | None = None) -> str:
    """One row per check; ``confirmed`` fills ``confirm_relative`` on the checks that were
    candidates for the generator kept (their relative score on the confirming fakes)."""
    higher = task_of(task).higher_is_better
    again = dict(confirmed or [])
    rows = [f"step,label_score_{task_of(task).metric},relative_score,minutes,stop,confirm_relative"]
    for i, (s, v) in enumerate(scores):
        why = stop if stop and i == len(scores) - 1 else ""
        c = f"{relative_score(again[s], reference, higher):.4f}" if s in again else ""
        rows.append(f"{s},{v:.4f},{relative_score(v, reference, higher):.4f},{minutes.get(s, float('nan')):.2f},"
                    f"{why},{c}")
    return "\n".join(rows) + "\n"


def read_curve(path: Path) -> tuple[list[int], list[float], list[float]]:
    """(steps, relative scores, minutes) of a quality.csv; empty lists when there is none (or one
    written before relative scores were recorded)."""
    if not path.is_file():
        return [], [], []
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    if not rows or "relative_score" not in rows[0]:
        return [], [], []
    return ([int(r["step"]) for r in rows], [float(r["relative_score"]) for r in rows],
            [float(r["minutes"]) for r in rows])
