"""train-teacher: the big network, on the real training set."""

from __future__ import annotations

from typing import Any

from cgankd.base.tracker import NullTracker
from cgankd.config import Config
from cgankd.stages.common import train_network


def run(cfg: Config, tracker: NullTracker | None = None) -> dict[str, Any]:
    return train_network(cfg, tracker or NullTracker(), cfg.teacher.arch, 0, "train-teacher", "teacher")
