"""CcGAN's vicinities on hand-made labels: rules of thumb, hard and soft weights, batches."""

import math

import numpy as np
import pytest
import torch

from cgankd.base.errors import CgankdError
from cgankd.config import GanCfg
from cgankd.gan.biggan import Discriminator, Generator
from cgankd.gan.losses import d_hinge
from cgankd.gan.vicinity import (
    Vicinity,
    hard_weights,
    rule_of_thumb_kappa,
    rule_of_thumb_sigma,
    soft_weights,
)

LABELS = np.array([0.0, 0.1, 0.1, 0.3, 0.4, 1.0])  # distinct gaps 0.1, 0.2, 0.1, 0.6


def test_rules_of_thumb_by_hand():
    std = np.sqrt(np.mean((LABELS - LABELS.mean()) ** 2))
    assert rule_of_thumb_sigma(LABELS) == pytest.approx(1.06 * std * 6 ** (-0.2))
    assert rule_of_thumb_kappa(LABELS) == pytest.approx(0.6)
    assert rule_of_thumb_kappa(LABELS, k=-2.0) == pytest.approx(1.2)  # |k|
    with pytest.raises(CgankdError, match="two distinct"):
        rule_of_thumb_kappa(np.array([0.5, 0.5]))


def test_hard_weights_by_hand():
    w = hard_weights(torch.tensor([0.0, 0.1, 0.25, 0.35, 0.5], dtype=torch.float64), target=0.2, kappa=0.1)
    assert w.tolist() == [0.0, 1.0, 1.0, 0.0, 0.0]


def test_soft_weights_by_hand():
    nu = 1 / 0.1**2
    w = soft_weights(torch.tensor([0.2, 0.3, 0.0], dtype=torch.float64), target=0.2, nu=nu)
    assert w.tolist() == pytest.approx([1.0, math.exp(-1.0), math.exp(-4.0)])


@pytest.mark.parametrize("kind", ["hard", "soft"])
def test_vicinal_batches_stay_in_the_window(kind):
    labels = np.repeat(np.linspace(0.0, 1.0, 11), 3)  # gap 0.1
    v = Vicinity(labels, kind, sigma=0.05, kappa=0.1)
    assert v.nu == pytest.approx(100.0)
    radius = 0.1 if kind == "hard" else math.sqrt(math.log(1000) / 100)
    assert v.radius == pytest.approx(radius)
    b = v.d_batch(512, torch.Generator().manual_seed(0))
    real = torch.as_tensor(labels)[b.real_idx].float()
    assert ((real - b.target).abs() <= radius + 1e-6).all()
    assert ((b.fake_labels - b.target).abs() <= radius + 1e-6).all()
    assert (b.fake_labels >= 0).all() and (b.fake_labels <= 1).all()
    if kind == "hard":
        assert (b.real_w == 1).all() and (b.fake_w == 1).all()
    else:  # weights exp(-nu d^2), at least the threshold inside the window
        assert torch.allclose(b.real_w, torch.exp(-100 * (real - b.target) ** 2), atol=1e-5)
        assert (b.fake_w >= 1e-3 - 1e-6).all() and (b.fake_w <= 1).all()
    g = v.g_labels(256, torch.Generator().manual_seed(1))
    assert (g >= 0).all() and (g <= 1).all() and g.std() > 0.2
    again = v.d_batch(512, torch.Generator().manual_seed(0))
    assert torch.equal(again.real_idx, b.real_idx) and torch.equal(again.target, b.target)


def test_targets_without_neighbours_are_redrawn():
    # two clusters far apart and a tiny kappa: every target must still find a real image
    labels = np.array([0.0, 0.001, 0.999, 1.0])
    v = Vicinity(labels, "hard", sigma=0.3, kappa=0.001)
    b = v.d_batch(200, torch.Generator().manual_seed(0))
    real = torch.as_tensor(labels)[b.real_idx].float()
    assert ((real - b.target).abs() <= 0.001 + 1e-6).all()


def test_weighted_hinge_by_hand():
    real, fake = torch.tensor([0.5, 2.0]), torch.tensor([-0.5, 0.0])
    assert d_hinge(real, fake).item() == pytest.approx((0.5 + 0) / 2 + (0.5 + 1) / 2)
    w = torch.tensor([1.0, 0.0])
    assert d_hinge(real, fake, w, w).item() == pytest.approx(0.5 / 2 + 0.5 / 2)


def test_ccgan_shapes_and_continuous_condition():
    torch.manual_seed(0)
    g, d = Generator(None, 16, 1, z_dim=8, ch=8, embed_dim=16), Discriminator(None, 16, 1, ch=8)
    y = torch.tensor([0.0, 0.5, 1.0])
    x = g(torch.randn(3, 8), y)
    assert x.shape == (3, 1, 16, 16) and d(x, y).shape == (3,)
    # the label reaches D: the same image scores differently under different labels
    assert not torch.allclose(d(x, y), d(x, y.flip(0)))
    assert GanCfg().ccgan.vicinity == "soft"
