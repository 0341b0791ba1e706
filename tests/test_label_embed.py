"""The improved CcGAN's label embedding (gan.ccgan.embedding=y2h): trained before the GAN, y2h maps a
label to the x2y network's hidden space so that its frozen head reads the label back; the GAN trains
with it frozen, and the generator file rebuilds with it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cgankd import store
from cgankd.config import CcganCfg, GanCfg
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
    c = CcganCfg(embedding="y2h", embed_arch="convnet_xs", embed_steps=300, y2h_steps=600)
    y2h, fit = train_label_embedding(x, y, 32, c, seed=0, device=torch.device("cpu"))
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


def test_x2y_on_resnet34_embed_has_the_size_of_their_resnet34_embed():
    """Their ResNet34_embed (UTKFace/models/ResNet_embed.py) at dim_embed 128: pytorch-cifar's ResNet34
    trunk without its classifier (21,276,992) plus the 1x1 shortcut their first stage gains by halving
    the size (4,224), x2h_res (512 -> 512 -> 128, each with BatchNorm1d: 329,600) and h2y (129)."""
    from cgankd.gan.label_embed import X2Y
    from cgankd.models import build_model, count_params

    backbone = build_model("resnet34_embed", 3, 1, 64).backbone
    x2y = X2Y(backbone, backbone.feat_dim, 128)
    assert count_params(x2y) - count_params(backbone.fc) == 21_276_992 + 4_224 + 329_600 + 129
    assert backbone.features(torch.zeros(2, 3, 64, 64)).shape == (2, 512)


def test_their_schedule_in_epochs_with_step_decay():
    """x2y: 200 epochs of n // 256 steps, lr x 0.1 at epochs 60 and 120; y2h: 500 shuffled passes over
    the distinct labels in batches of 128, each label once an epoch, lr x 0.1 at 150, 250 and 350."""
    from cgankd.gan.label_embed import _sgd, _y2h_batches, plan

    c = CcganCfg(embed_epochs=200, embed_batch_size=256, embed_decay_at=[0.3, 0.6], y2h_epochs=500,
                 y2h_decay_at=[0.3, 0.5, 0.7])
    assert plan(c, 14_760, 60) == (200 * 57, 500)
    assert plan(c, 14_760, 300) == (200 * 57, 500 * 3)
    assert plan(CcganCfg(embed_steps=7, y2h_steps=9), 14_760, 60) == (7, 9)
    opt, sched = _sgd([torch.zeros(1, requires_grad=True)], 200 * 57, c.embed_decay_at)
    seen = []
    for step in range(200 * 57):  # the lr each epoch's first step runs at
        if step % 57 == 0 and step // 57 in (0, 59, 60, 119, 120, 199):
            seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([0.01, 0.01, 0.001, 0.001, 0.0001, 0.0001])
    unique = torch.linspace(0, 1, 300)
    batches = list(_y2h_batches(unique, CcganCfg(y2h_epochs=2), torch.Generator().manual_seed(0)))
    assert [len(b) for b in batches] == [128, 128, 44] * 2
    assert torch.equal(torch.cat(batches[:3]).sort().values, unique)  # each label once an epoch
    assert not torch.equal(torch.cat(batches[:3]), torch.cat(batches[3:]))  # reshuffled
