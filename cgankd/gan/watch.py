"""Quality of the GAN while it trains: every ``every`` iterations a score of the EMA generator
(the stage passes the teacher's label score on a fixed batch of fakes), and an optional stop when
the score has not improved for ``patience`` checks in a row.

The scores travel in the GAN checkpoint, so a resumed run keeps counting where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

Score = Callable[[int, nn.Module], float]  # (step, EMA generator) -> label score


@dataclass
class Watch:
    score: Score
    every: int
    patience: int | None = None
    higher_is_better: bool = True
    scores: list[tuple[int, float]] = field(default_factory=list)

    def due(self, step: int, last: int) -> bool:
        return self.every > 0 and (step % self.every == 0 or step == last)

    def better(self, a: float, b: float) -> bool:
        return a > b if self.higher_is_better else a < b

    def check(self, step: int, g: nn.Module) -> bool:
        """Score ``g`` at ``step``; True when training should stop (no improvement for
        ``patience`` checks)."""
        self.scores.append((step, float(self.score(step, g))))
        return self.stale >= self.patience if self.patience is not None else False

    @property
    def best(self) -> tuple[int, float]:
        """(step, score) of the best check so far (the first of equals)."""
        top = self.scores[0]
        for sv in self.scores[1:]:
            if self.better(sv[1], top[1]):
                top = sv
        return top

    @property
    def stale(self) -> int:
        """Checks since the best score so far."""
        return len(self.scores) - 1 - self.scores.index(self.best) if self.scores else 0

    def state(self) -> list[list[float]]:
        return [[s, v] for s, v in self.scores]

    def load(self, meta: dict[str, Any]) -> None:
        self.scores = [(int(s), float(v)) for s, v in meta.get("watch", [])]
