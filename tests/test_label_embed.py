"""The improved CcGAN's label embedding (gan.ccgan.embedding=y2h): trained before the GAN, y2h maps a
label to the x2y network's hidden space so that its frozen head reads the label back; the GAN trains
with it frozen, and the generator file rebuilds with it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cgankd import store
from cgankd.config import GanCfg
from cgankd.gan.label_embed import Y2H, Frozen, train_label_embedding
from cgankd.gan.train import train_gan


def _data(n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """Images whose brightness is the label (scaled to [0, 1]), so x2y has something to learn."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.linspace(0.05, 0.95, 12), n // 12).astype(np.float32)
    x = (y[:, None, None, None] * 255 + rng.normal(0, 8, (n, 3, 16, 16))).clip(0, 255).astype(np.uint8)
    return x, y


def test_y2h_reads_back_through_the_frozen_head():
    x, y = _data()
    y2h, fit = train_label_embedding(x, y, 32, "convnet_xs", 300, 600, seed=0, device=torch.device("cpu"))
    assert isinstance(y2h, Y2H) and not y2h.training and y2h.dim == 32
    assert fit["embed_x2y_mse"] < 0.02 and fit["embed_y2h_mse"] < 0.001, fit
    h = y2h(torch.linspace(0, 1, 11))
    assert h.shape == (11, 32) and torch.isfinite(h).all()


def test_the_gan_trains_with_y2h_frozen_and_the_generator_file_rebuilds_it(tmp_path):
    x, y = _data()
    torch.manual_seed(1)
    y2h = Y2H(8).eval()
    before = {k: v.clone() for k, v in y2h.state_dict().items()}
    cfg = GanCfg(iterations=3, batch_size=8, z_dim=8, g_ch=4, d_ch=4, embed_dim=8, score_every=0,
                 checkpoint_every=100, ema_start=1)
    cfg.ccgan.embedding = "y2h"
    g, _ = train_gan(cfg, x, y, None, 0, tmp_path / "ck.pt", y2h=y2h)
    assert isinstance(g.embed, Frozen) and not g.embed.inner.training
    assert all(torch.equal(g.embed.inner.state_dict()[k], before[k]) for k in before)  # never trained
    store.save_gan_generator(g, tmp_path / "g.pt", {"num_classes": None, "resolution": 16, "channels": 3,
                                                    "gan": {**cfg.__dict__, "ccgan": cfg.ccgan.__dict__}})
    again = store.load(tmp_path / "g.pt", "gan_generator")
    z, labels = torch.randn(4, 8), torch.linspace(0, 1, 4)
    with torch.no_grad():
        assert torch.equal(again(z, labels), g.eval()(z, labels))


def test_the_setting_is_checked():
    from cgankd.base.errors import CgankdError
    from cgankd.config import load_config

    with pytest.raises(CgankdError, match="gan.ccgan.embedding"):
        load_config(None, ["gan.ccgan.embedding=onehot"])
    with pytest.raises(CgankdError, match="gan.ccgan.embed_arch"):
        load_config(None, ["gan.ccgan.embed_arch=resnet999"])
    with pytest.raises(CgankdError, match="gan.embed_dim: y2h's GroupNorm.8. needs a multiple of 8 from 32 up"):
        load_config(None, ["gan.ccgan.embedding=y2h", "gan.embed_dim=16"])
