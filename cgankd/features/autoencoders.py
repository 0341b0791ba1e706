"""The regression extractors by ``extractor.ae``: cgankd's small sparse autoencoder, or the authors'
(cgankd/features/sparse_ae_paper.py), each with how it trains."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from cgankd.base.registry import Registry
from cgankd.config.sections import ExtractorCfg
from cgankd.data.prepared import Meta
from cgankd.features.sparse_ae import AeTraining, SparseAE

Variant = Callable[[ExtractorCfg, Meta, int], tuple[nn.Module, AeTraining]]
AES: Registry[Variant] = Registry("extractor.ae")


@AES.register("small")
def _small(ec: ExtractorCfg, meta: Meta, n_images: int) -> tuple[nn.Module, AeTraining]:
    """3 stride-2 convs to a ``feat_dim`` code; Adam at ``ae_lr`` for ``steps`` uniform batches."""
    model = SparseAE(meta.channels, meta.resolution, ec.feat_dim)
    return model, AeTraining(ec.steps, ec.batch_size, ec.sparsity,
                             lambda params: torch.optim.Adam(params, lr=ec.ae_lr))


@AES.register("paper")
def _paper(ec: ExtractorCfg, meta: Meta, n_images: int) -> tuple[nn.Module, AeTraining]:
    """Theirs: SGD (``lr``, ``momentum``, ``weight_decay``) for ``epochs`` of ``n // batch_size`` steps (or
    ``steps``) on ``schedule`` (step: lr x ``decay_rate`` at each ``decay_at``), label-balanced batches,
    flips if ``augment``."""
    from cgankd.features.sparse_ae_paper import PaperSparseAE

    model = PaperSparseAE(meta.channels, meta.resolution, ec.feat_dim, ec.width)
    from cgankd.train.loop import SCHEDULES

    steps = ec.steps if ec.epochs is None else ec.epochs * max(1, n_images // ec.batch_size)
    return model, AeTraining(
        steps, ec.batch_size, ec.sparsity,
        lambda params: torch.optim.SGD(params, lr=ec.lr, momentum=ec.momentum, weight_decay=ec.weight_decay),
        SCHEDULES[ec.schedule](ec, steps), balanced=True, flip=ec.augment)


def spec(ec: ExtractorCfg, meta: Meta, model: nn.Module) -> dict[str, Any]:
    """What the extractor file says, enough to rebuild the model (cgankd/store/kinds.py)."""
    return {"kind": "sparse_ae", "ae": ec.ae, "channels": meta.channels, "resolution": meta.resolution,
            "feat_dim": model.feat_dim, "width": ec.width}


def rebuild(meta: dict[str, Any]) -> nn.Module:
    if meta.get("ae", "small") == "small":  # files written before the key: the small one
        return SparseAE(meta["channels"], meta["resolution"], meta["feat_dim"])
    from cgankd.features.sparse_ae_paper import PaperSparseAE

    return PaperSparseAE(meta["channels"], meta["resolution"], meta["feat_dim"], meta["width"])
