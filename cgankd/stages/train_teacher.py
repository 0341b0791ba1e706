"""train-teacher: the big network, on the real training set (or the released one in ``teacher.init``)."""

from __future__ import annotations

from typing import Any

from cgankd.base.tracker import NullTracker
from cgankd.config import Config
from cgankd.stages.common import train_network


def run(cfg: Config, tracker: NullTracker | None = None) -> dict[str, Any]:
    init = (cfg.teacher.init, "teacher.init") if cfg.teacher.init else None
    return train_network(cfg, tracker or NullTracker(), cfg.teacher.arch, 0, "train-teacher", "teacher", init)
