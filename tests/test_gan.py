import numpy as np
import pytest
import torch

from cgankd.config import GanCfg
from cgankd.gan.biggan import Discriminator, Generator
from cgankd.gan.diffaug import AUGMENTS, diff_augment, parse_policy
from cgankd.gan.losses import d_hinge, g_hinge
from cgankd.gan.train import sample, train_gan


@pytest.mark.parametrize("res, ch", [(16, 1), (32, 3)])
def test_shapes(res, ch):
    g, d = Generator(5, res, ch, z_dim=8, ch=4, embed_dim=8), Discriminator(5, res, ch, ch=4)
    y = torch.tensor([0, 4, 2])
    x = g(torch.randn(3, 8), y)
    assert x.shape == (3, ch, res, res) and x.abs().max() <= 1
    assert d(x, y).shape == (3,)


def test_hinge_by_hand():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert d_hinge(real, fake).item() == pytest.approx((0 + 0.5) / 2 + (0 + 1) / 2)
    assert g_hinge(fake).item() == pytest.approx(1.0)


def test_diffaug_keeps_shape_and_gradients():
    x = torch.rand(4, 3, 16, 16, requires_grad=True)
    out = diff_augment(x, parse_policy("color,translation,cutout"))
    out.sum().backward()
    assert out.shape == x.shape and x.grad is not None
    assert set(AUGMENTS.names()) == {"color", "translation", "cutout"}


def _data():
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (20, 3, 16, 16)).astype(np.uint8), np.arange(20) % 4


@pytest.mark.parametrize("vicinity", [None, "hard", "soft"])  # None: class-conditional
def test_interrupted_training_resumes_to_the_same_weights(tmp_path, vicinity):
    cfg = GanCfg(iterations=6, batch_size=8, z_dim=8, g_ch=4, d_ch=4, embed_dim=8,
                 checkpoint_every=3, ema_start=2)
    x, y = _data()
    n = 4
    if vicinity is not None:  # CcGAN on labels in [0, 1]
        cfg.ccgan.vicinity, y, n = vicinity, (np.arange(20) % 10 / 9.0).astype(np.float32), None
    g_full, hist_full = train_gan(cfg, x, y, n, seed=0, ckpt_path=tmp_path / "a.pt")
    with pytest.raises(KeyboardInterrupt):
        train_gan(cfg, x, y, n, seed=0, ckpt_path=tmp_path / "b.pt", stop_after=3)
    g_res, hist_res = train_gan(cfg, x, y, n, seed=0, ckpt_path=tmp_path / "b.pt")
    assert [h["step"] for h in hist_res] == list(range(1, 7))
    for a, b in zip(g_full.state_dict().values(), g_res.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_changed_config_starts_fresh(tmp_path):
    cfg = GanCfg(iterations=2, batch_size=8, z_dim=8, g_ch=4, d_ch=4, embed_dim=8, checkpoint_every=1)
    x, y = _data()
    train_gan(cfg, x, y, 4, seed=0, ckpt_path=tmp_path / "c.pt")
    cfg.iterations, cfg.lr_g = 3, 1e-3
    _, hist = train_gan(cfg, x, y, 4, seed=0, ckpt_path=tmp_path / "c.pt")
    assert len(hist) == 3  # did not resume from a checkpoint of another config


def test_sample_is_uint8_per_label():
    g = Generator(3, 16, 3, z_dim=8, ch=4, embed_dim=8)
    imgs = sample(g, np.array([0, 1, 2, 2]), 8, torch.Generator().manual_seed(0), batch_size=3)
    assert imgs.dtype == np.uint8 and imgs.shape == (4, 3, 16, 16)
    cc = Generator(None, 16, 1, z_dim=8, ch=4, embed_dim=8)
    imgs = sample(cc, np.array([0.0, 0.37, 1.0]), 8, torch.Generator().manual_seed(0))
    assert imgs.dtype == np.uint8 and imgs.shape == (3, 1, 16, 16)


def test_ema_warms_up_and_tracks_before_start():
    from cgankd.gan.ema import EMA

    src = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        src.weight.fill_(0.0)
    ema = EMA(src, decay=0.999, start=2)
    with torch.no_grad():
        src.weight.fill_(1.0)
    ema.update(src, step=1)  # before start: a copy
    assert ema.model.weight.item() == 1.0
    with torch.no_grad():
        src.weight.fill_(2.0)
    ema.update(src, step=2)  # k = 0: decay 0.1
    assert ema.model.weight.item() == pytest.approx(0.1 * 1.0 + 0.9 * 2.0)


def _tiny(iterations=12):
    return GanCfg(iterations=iterations, batch_size=8, z_dim=8, g_ch=4, d_ch=4, embed_dim=8,
                  checkpoint_every=5, ema_start=2)


def test_watch_scores_without_changing_training(tmp_path):
    from cgankd.gan.watch import Watch

    x, y = _data()
    seen = []
    watch = Watch(lambda step, g: seen.append(step) or float(step), every=4)
    g_w, _ = train_gan(_tiny(10), x, y, 4, seed=0, ckpt_path=tmp_path / "w.pt", watch=watch)
    g_0, _ = train_gan(_tiny(10), x, y, 4, seed=0, ckpt_path=tmp_path / "n.pt")
    assert seen == [4, 8, 10] and watch.stale == 0
    for a, b in zip(g_w.state_dict().values(), g_0.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_watch_stops_when_the_score_stops_improving_and_the_stop_is_kept(tmp_path):
    from cgankd.gan.watch import Watch

    x, y = _data()
    scores = {2: 50.0, 4: 60.0, 6: 59.0, 8: 58.0, 10: 70.0}

    def make():
        return Watch(lambda step, g: scores[step], every=2, patience=2)

    w = make()
    g, hist = train_gan(_tiny(), x, y, 4, seed=0, ckpt_path=tmp_path / "s.pt", watch=w)
    assert hist[-1]["step"] == 8 and [s for s, _ in w.scores] == [2, 4, 6, 8]  # 2 checks without a gain
    w2 = make()
    g2, hist2 = train_gan(_tiny(), x, y, 4, seed=0, ckpt_path=tmp_path / "s.pt", watch=w2)
    assert len(hist2) == 8 and w2.scores == w.scores  # the re-run does not train on
    for a, b in zip(g.state_dict().values(), g2.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    lower = Watch(lambda step, g: scores[step], every=2, patience=2, higher_is_better=False)
    _, hist3 = train_gan(_tiny(), x, y, 4, seed=0, ckpt_path=tmp_path / "l.pt", watch=lower)
    assert hist3[-1]["step"] == 6  # an MAE: lower is better, so 50 at step 2 is the best
