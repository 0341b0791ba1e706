"""When GAN training ends: at the first of the target label score (``gan.target_score``, through
the watch), no improvement for ``gan.stop_patience`` checks, the wall-clock budget
(``gan.max_minutes``) and the iteration cap (``gan.iterations``).

The rule is asked after every iteration and again when a run resumes from its checkpoint, so a
finished or stopped GAN whose cap, target, patience or budget is raised trains on from where it
stopped, and one whose limits still hold does not. The budget counts training time across
resumes (the checkpoint carries it); the time spent scoring the watch counts too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from cgankd.gan.watch import Watch

REASONS = {
    "target": "the label score reached gan.target_score",
    "patience": "the label score has not improved for gan.stop_patience checks",
    "time": "the wall-clock budget gan.max_minutes is spent",
    "iterations": "the iteration cap gan.iterations is reached",
}


@dataclass
class Stop:
    iterations: int
    max_minutes: float | None = None
    clock: Callable[[], float] = time.monotonic
    seconds: float = 0.0  # training time so far, across resumes
    reason: str | None = None

    def __post_init__(self) -> None:
        self._since = self.clock()

    def resume(self, seconds: float) -> None:
        """Continue counting from a checkpoint's training time."""
        self.seconds, self._since = seconds, self.clock()

    def tick(self) -> float:
        now = self.clock()
        self.seconds += now - self._since
        self._since = now
        return self.seconds

    @property
    def out_of_time(self) -> bool:
        return self.max_minutes is not None and self.seconds >= 60.0 * self.max_minutes

    def check(self, step: int, watch: Watch | None) -> str | None:
        """The reason to stop after ``step`` (None: train on); remembered in ``reason``."""
        if watch is not None and watch.reached:
            self.reason = "target"
        elif watch is not None and watch.exhausted:
            self.reason = "patience"
        elif self.out_of_time:
            self.reason = "time"
        elif step >= self.iterations:
            self.reason = "iterations"
        else:
            self.reason = None
        return self.reason

    def describe(self, step: int) -> str:
        return f"stopped at iteration {step}: {REASONS[self.reason]}" if self.reason else f"at iteration {step}"
