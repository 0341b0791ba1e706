"""Quality of the GAN while it trains: every ``every`` iterations a score of the EMA generator
(the stage passes the teacher's label score on a fixed batch of fakes). The watch keeps the
weights of the best-scoring EMA generator so far (the one the fakes are made with), and says when
its rules end training: the score reached ``target``, or it has not improved for ``patience``
checks in a row.

The scores and the best weights travel in the GAN checkpoint, so a resumed run keeps counting
where it stopped, and raising the target or the patience on a stopped run trains on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

Score = Callable[[int, nn.Module], float]  # (step, EMA generator) -> label score
Checked = Callable[["Watch"], None]  # called after every check (e.g. writes quality.csv)


@dataclass
class Watch:
    score: Score
    every: int
    patience: int | None = None
    higher_is_better: bool = True
    target: float | None = None  # in the score's own unit; reached when the best is as good
    on_check: Checked | None = None
    scores: list[tuple[int, float]] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] | None = None  # the best EMA generator's weights (CPU copies)

    def due(self, step: int, last: int) -> bool:
        return self.every > 0 and (step % self.every == 0 or step == last)

    def better(self, a: float, b: float) -> bool:
        return a > b if self.higher_is_better else a < b

    def check(self, step: int, g: nn.Module) -> float:
        """Score ``g`` at ``step``; keep its weights when it is the best so far."""
        value = float(self.score(step, g))
        self.scores.append((step, value))
        if self.best[0] == step:
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in g.state_dict().items()}
        if self.on_check is not None:
            self.on_check(self)
        return value

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

    @property
    def reached(self) -> bool:
        """The best score so far is at least as good as ``target``."""
        if self.target is None or not self.scores:
            return False
        best = self.best[1]
        return best >= self.target if self.higher_is_better else best <= self.target

    @property
    def exhausted(self) -> bool:
        """No improvement for ``patience`` checks."""
        return self.patience is not None and bool(self.scores) and self.stale >= self.patience

    def state(self) -> list[list[float]]:
        return [[s, v] for s, v in self.scores]

    def load(self, meta: dict[str, Any], best_state: dict[str, torch.Tensor] | None = None) -> None:
        self.scores = [(int(s), float(v)) for s, v in meta.get("watch", [])]
        self.best_state = best_state
