"""Quality of the GAN while it trains: every ``every`` iterations a score of the EMA generator
(the stage passes the teacher's label score on a fixed batch of fakes). The watch says when its
rules end training (the score reached ``target``, or it has not improved for ``patience`` checks in
a row) and keeps the weights of one EMA generator, the one the fakes are made with.

Which one: the best of many noisy checks is mostly a lucky one (the winner's curse: 38 checks of
500 fakes each picked a generator scoring 1.00 of the teacher's that scored 0.92 on fresh fakes,
docs/results.md). So a check that beats every earlier one is only a candidate: ``confirm`` scores it
again on other fakes, which played no part in choosing it, and the candidate replaces the kept
generator only when its confirming score is better than the kept one's. Without ``confirm`` the
best check is kept.

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
    confirm: Score | None = None  # asked only of a new best check: the score that picks the generator kept
    scores: list[tuple[int, float]] = field(default_factory=list)
    confirmed: list[tuple[int, float]] = field(default_factory=list)  # (step, confirming score) per candidate
    best_state: dict[str, torch.Tensor] | None = None  # the kept EMA generator's weights (CPU copies)

    def due(self, step: int, last: int) -> bool:
        return self.every > 0 and (step % self.every == 0 or step == last)

    def better(self, a: float, b: float) -> bool:
        return a > b if self.higher_is_better else a < b

    def check(self, step: int, g: nn.Module) -> float:
        """Score ``g`` at ``step``; a new best is a candidate, kept when its confirming score is
        the best of the candidates'."""
        value = float(self.score(step, g))
        self.scores.append((step, value))
        if self.best[0] == step:
            self.confirmed.append((step, value if self.confirm is None else float(self.confirm(step, g))))
            if self.kept[0] == step:
                self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in g.state_dict().items()}
        if self.on_check is not None:
            self.on_check(self)
        return value

    @property
    def best(self) -> tuple[int, float]:
        """(step, score) of the best check so far (the first of equals)."""
        return self._top(self.scores)

    @property
    def kept(self) -> tuple[int, float]:
        """(step, confirming score) of the generator kept: the candidate confirmed best (the first of equals)."""
        return self._top(self.confirmed)

    def _top(self, pairs: list[tuple[int, float]]) -> tuple[int, float]:
        top = pairs[0]
        for sv in pairs[1:]:
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

    def state(self) -> dict[str, list[list[float]]]:
        """What a checkpoint's meta keeps (``watch``, ``confirmed``)."""
        return {"watch": [[s, v] for s, v in self.scores], "confirmed": [[s, v] for s, v in self.confirmed]}

    def load(self, meta: dict[str, Any], best_state: dict[str, torch.Tensor] | None = None) -> None:
        self.scores = [(int(s), float(v)) for s, v in meta.get("watch", [])]
        # a checkpoint from before confirmation kept the best check: it stands as the one candidate
        kept = meta.get("confirmed") or ([list(self.best)] if self.scores and best_state is not None else [])
        self.confirmed = [(int(s), float(v)) for s, v in kept]
        self.best_state = best_state
