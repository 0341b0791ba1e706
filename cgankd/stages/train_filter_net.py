"""train-filter-net: the network that filters and relabels the fakes when it is not the teacher
(``filter.net``, the cGAN-KD authors' densenet121 for CIFAR-100 and ImageNet-100, a VGG for
regression), on the real training set with the teacher's settings."""

from __future__ import annotations

from typing import Any

from cgankd.base.tracker import NullTracker
from cgankd.config import Config
from cgankd.stages.common import train_network


def run(cfg: Config, tracker: NullTracker | None = None) -> dict[str, Any]:
    init = (cfg.filter.net_init, "filter.net_init") if cfg.filter.net_init else None
    return train_network(cfg, tracker or NullTracker(), str(cfg.filter.net), 6, "train-filter-net", "filter_net",
                         init)
