"""Run by tests/test_ddp.py in one process and under ``torchrun``: ``fit`` (with fakes, augmentation
and gradient clipping) on a model without BatchNorm, whose step is then the same at any world size
up to floating-point order; rank 0 saves the trained weights to ``argv[1]``."""

from __future__ import annotations

import sys

import numpy as np
import torch
from torch import nn

from cgankd.compute import distributed
from cgankd.compute.device import CPU
from cgankd.config import TrainCfg
from cgankd.data.prepared import Meta, Prepared, Split
from cgankd.train.loop import fit


def main(out: str) -> None:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    meta = Meta("classification", "test", 3, 8, classes=[str(i) for i in range(4)])
    real = Split(rng.integers(0, 256, (40, 3, 8, 8), dtype=np.uint8), rng.integers(0, 4, 40))
    fakes = Split(rng.integers(0, 256, (60, 3, 8, 8), dtype=np.uint8), rng.integers(0, 4, 60))
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                          nn.Linear(32, 4))
    cfg = TrainCfg(steps=30, batch_size=12, lr=0.1, eval_every=10, grad_clip=1.0)
    rt = distributed.runtime(CPU)
    res = fit(model, Prepared(meta, {"train": real, "val": real}), cfg, seed=3, desc="ddp-fit", fakes=fakes,
              fake_ratio=2.0, runtime=rt)
    if distributed.is_main():
        torch.save({"last": res.last.state_dict(), "history": res.history}, out)
    distributed.finish()


if __name__ == "__main__":
    main(sys.argv[1])
