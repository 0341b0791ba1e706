"""cDR-RS on a 1-D toy with a known answer, and FID against closed forms."""

import numpy as np
import pytest
import torch

from cgankd.quality.fid import Gaussian, fit_gaussian, frechet_distance
from cgankd.quality.scores import group_masks, quality, real_stats, windows
from cgankd.subsample.dre import DreCfg, ratios, sp_loss, train_ratio
from cgankd.subsample.rejection import RejectionSampler

SIGMA_Q = 1.5  # real p = N(0, 1), fakes q = N(0, 1.5^2): r(x) = 1.5 exp(-x^2 (1 - 1/1.5^2) / 2)
M_TRUE = SIGMA_Q  # sup r at x = 0; acceptance with the true M is 1 / M


def true_ratio(x: np.ndarray) -> np.ndarray:
    return SIGMA_Q * np.exp(-(x**2) * (1 - 1 / SIGMA_Q**2) / 2)


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(0)
    real = rng.normal(0, 1, (4000, 1)).astype(np.float32)
    fake = rng.normal(0, SIGMA_Q, (4000, 1)).astype(np.float32)
    zeros = np.zeros(4000, np.int64)  # one class
    model, hist = train_ratio(real, zeros, fake, zeros, 1, DreCfg(steps=400, hidden=64, lam=0.01), seed=0, desc="toy")
    return model, hist, rng


def test_sp_loss_by_hand():
    r_real, r_fake = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0])
    sig, sp = torch.sigmoid, torch.nn.functional.softplus
    fake_term = ((sig(r_fake) * r_fake - sp(r_fake)).mean())
    want = fake_term - sig(r_real).mean() + 0.5 * (r_fake.mean() - 1) ** 2
    assert sp_loss(r_real, r_fake, 0.5).item() == pytest.approx(want.item())
    # the penalty vanishes when the fake ratios average 1
    assert sp_loss(r_real, torch.tensor([0.5, 1.5]), 10.0).item() == pytest.approx(
        sp_loss(r_real, torch.tensor([0.5, 1.5]), 0.0).item())


def test_density_ratio_recovers_the_closed_form(toy):
    model, hist, _ = toy
    x = np.linspace(-3, 3, 121, dtype=np.float32)[:, None]
    est = ratios(model, x, np.zeros(len(x), np.int64))
    truth = true_ratio(x[:, 0])
    assert np.corrcoef(est, truth)[0, 1] > 0.95
    assert np.all(est >= 0)  # non-negative output
    assert est.max() == pytest.approx(M_TRUE, rel=0.25)
    assert hist[-1]["dre_loss"] < hist[0]["dre_loss"]


def test_rejection_sampling_acceptance_and_distribution(toy):
    model, _, rng = toy
    burn = rng.normal(0, SIGMA_Q, (2000, 1)).astype(np.float32)
    groups = np.zeros(2000, np.int64)
    s = RejectionSampler(ratios(model, burn, groups), groups, 1, np.random.default_rng(1))
    x = rng.normal(0, SIGMA_Q, (20000, 1)).astype(np.float32)
    keep = s.accept(ratios(model, x, np.zeros(len(x), np.int64)), np.zeros(len(x), np.int64))
    theory = 1 / M_TRUE  # E_q[r] / M with E_q[r] = 1
    assert s.acceptance_rate == pytest.approx(theory, abs=0.08)
    assert keep.mean() == pytest.approx(s.acceptance_rate)
    assert x[keep, 0].std() == pytest.approx(1.0, abs=0.1)  # accepted fakes follow p = N(0, 1)
    assert x[:, 0].std() == pytest.approx(SIGMA_Q, abs=0.05)


def test_rejection_with_the_true_ratio_matches_theory_exactly():
    rng = np.random.default_rng(3)
    x = rng.normal(0, SIGMA_Q, 50000)
    g = np.zeros(len(x), np.int64)
    s = RejectionSampler(np.array([M_TRUE]), np.zeros(1, np.int64), 1, np.random.default_rng(4))
    keep = s.accept(true_ratio(x), g)
    assert keep.mean() == pytest.approx(1 / M_TRUE, abs=0.01)
    assert x[keep].std() == pytest.approx(1.0, abs=0.02)


def test_rejection_bound_grows_per_group():
    s = RejectionSampler(np.array([1.0, 2.0]), np.array([0, 1]), 3, np.random.default_rng(0))
    assert s.m.tolist() == [1.0, 2.0, 2.0]  # a group without burn-in starts at the global max
    s.accept(np.array([5.0, 0.5]), np.array([0, 1]))
    assert s.m.tolist() == [5.0, 2.0, 2.0]


def test_fid_identical_sets_is_zero():
    f = np.random.default_rng(0).normal(size=(500, 8))
    assert frechet_distance(fit_gaussian(f), fit_gaussian(f.copy())) == pytest.approx(0.0, abs=1e-6)


def test_fid_closed_form_for_gaussians():
    # N(mu1, s1^2 I) vs N(mu2, s2^2 I) in d dims: |mu1 - mu2|^2 + d (s1 - s2)^2
    d = 4
    a = Gaussian(np.zeros(d), np.eye(d) * 1.0, 0)
    b = Gaussian(np.full(d, 2.0), np.eye(d) * 9.0, 0)
    assert frechet_distance(a, b) == pytest.approx(16.0 + d * (1 - 3) ** 2)
    # general covariances: compare with the textbook formula through eigen-decompositions
    rng = np.random.default_rng(1)
    m1, m2 = rng.normal(size=(2, 3, 3))
    s1, s2 = m1 @ m1.T + np.eye(3), m2 @ m2.T + np.eye(3)
    w, v = np.linalg.eig(s1 @ s2)
    want = 1.0 + np.trace(s1 + s2) - 2 * np.sqrt(w.astype(complex)).real.sum()
    assert frechet_distance(Gaussian(np.zeros(3), s1, 0), Gaussian(np.eye(3)[0], s2, 0)) == pytest.approx(want)
    # samples from two Gaussians approach the closed form
    x = rng.normal(0, 1, (20000, 2))
    y = rng.normal(1, 2, (20000, 2))
    assert frechet_distance(fit_gaussian(x), fit_gaussian(y)) == pytest.approx(2 + 2 * 1.0, rel=0.05)


def test_fid_uses_the_squared_mean_difference():
    a = Gaussian(np.zeros(1), np.eye(1), 0)
    assert frechet_distance(a, Gaussian(np.array([3.0]), np.eye(1), 0)) == pytest.approx(9.0)


def test_intra_fid_windows_and_diversity():
    assert windows(3, 0.2).tolist() == pytest.approx([0.1, 0.5, 0.9])
    y = np.array([0.05, 0.5, 0.55, 0.95])
    masks = group_masks(y, None, windows(3, 0.2), 0.2)
    assert [m.tolist() for m in masks] == [[True, False, False, False], [False, True, True, False],
                                           [False, False, False, True]]
    rng = np.random.default_rng(0)
    real_f = rng.normal(size=(2000, 2))
    real_y = rng.integers(0, 2, 2000)
    real = real_stats(real_f, real_y, 2, None, 0.1)
    # fakes: class 0 perfect, class 1 collapsed to one point
    fake_f = np.concatenate([rng.normal(size=(1000, 2)), np.zeros((1000, 2))])
    fake_y = np.repeat([0, 1], 1000)
    q, per = quality(fake_f, fake_y, real, 2, None, 0.1)
    assert per[0] < 0.05 and per[1] == pytest.approx(2.0, abs=0.2)  # trace of the real cov
    assert q["intra_fid"] == pytest.approx(np.mean(per))
    assert q["diversity"] == pytest.approx(0.5, abs=0.05)


def test_quantile_bound_keeps_every_fake_above_it_and_accepts_more():
    rng = np.random.default_rng(5)
    burn, x = rng.normal(0, SIGMA_Q, 4000), rng.normal(0, SIGMA_Q, 40000)
    g0, g = np.zeros(len(burn), np.int64), np.zeros(len(x), np.int64)
    exact = RejectionSampler(true_ratio(burn), g0, 1, np.random.default_rng(6))
    q90 = RejectionSampler(true_ratio(burn), g0, 1, np.random.default_rng(6), quantile=0.9)
    m = float(np.quantile(true_ratio(burn), 0.9))
    assert q90.m[0] == pytest.approx(m) and m < exact.m[0]
    r = true_ratio(x)
    keep = q90.accept(r, g)
    exact.accept(r, g)
    assert keep[r >= m].all()  # above M: always kept
    assert q90.m[0] == pytest.approx(m)  # a fixed bound: not raised by larger ratios
    assert keep.mean() == pytest.approx(np.minimum(r, m).mean() / m, abs=0.01)  # E[min(r, M)] / M
    assert q90.acceptance_rate > exact.acceptance_rate
    assert x[keep].std() < x.std()  # still pulled towards p = N(0, 1)


def test_quantile_bound_per_group():
    s = RejectionSampler(np.array([1.0, 2.0, 3.0, 10.0, 20.0]), np.array([0, 0, 0, 1, 1]), 3,
                         np.random.default_rng(0), quantile=0.5)
    assert s.m.tolist() == [2.0, 15.0, 3.0]  # per-group medians; a group without burn-in: the overall one


def test_early_stopping_keeps_the_best_check_and_ratios_near_one_for_identical_sets():
    rng = np.random.default_rng(7)
    real, fake = rng.normal(0, 1, (300, 4)).astype(np.float32), rng.normal(0, 1, (3000, 4)).astype(np.float32)
    ry, fy = rng.integers(0, 3, 300), rng.integers(0, 3, 3000)
    cfg = DreCfg(steps=3000, hidden=64, patience=3, checks=30)
    model, hist = train_ratio(real, ry, fake, fy, 3, cfg, seed=0, desc="toy")
    assert hist[-1]["step"] < cfg.steps  # stopped early
    checks = [h["dre_check_loss"] for h in hist]
    assert len(checks) == len(hist) and np.argmin(checks) == len(checks) - 1 - cfg.patience
    fresh = rng.normal(0, 1, (2000, 4)).astype(np.float32)
    r = ratios(model, fresh, rng.integers(0, 3, 2000))
    assert 0.6 < np.median(r) < 1.6  # a fake that looks real gets a ratio near 1


def test_holdout_is_per_class_seeded_and_disjoint():
    from cgankd.subsample.holdout import holdout_mask

    labels = np.repeat(np.arange(4), [10, 10, 3, 1])
    m = holdout_mask(labels, 0.3, 0, 4)
    assert [int(m[labels == c].sum()) for c in range(4)] == [3, 3, 1, 0]  # never a whole class
    assert np.array_equal(m, holdout_mask(labels, 0.3, 0, 4)) and not np.array_equal(m, holdout_mask(labels, 0.3, 1, 4))
    assert not holdout_mask(labels, 0.0, 0, 4).any()
    cont = holdout_mask(np.linspace(0, 1, 100), 0.25, 0, None)
    assert cont.sum() == 25


def test_the_published_dre_mlp5_on_fresh_fakes_recovers_the_ratio():
    """The authors' recipe: MLP5 (GroupNorm, dropout 0.5), new fakes at every step at the real batch's
    labels, Adam (0.5, 0.999), lr x 0.1 at 40% and 75%: the same closed form is recovered."""
    rng = np.random.default_rng(0)
    real = rng.normal(0, 1, (4000, 1)).astype(np.float32)
    zeros = np.zeros(4000, np.int64)
    drawn = []
    gen = torch.Generator().manual_seed(5)

    def fresh(y: torch.Tensor) -> torch.Tensor:
        drawn.append(len(y))
        return torch.randn(len(y), 1, generator=gen) * SIGMA_Q

    cfg = DreCfg(steps=150, batch_size=64, lr=1e-3, lam=0.01, net="mlp5", betas=(0.5, 0.999), decay_at=[0.4, 0.75])
    model, _ = train_ratio(real, zeros, real[:1], zeros[:1], 1, cfg, seed=0, desc="toy", fresh=fresh)
    assert drawn == [64] * 150 and model.net_name == "mlp5"
    assert any(isinstance(m, torch.nn.GroupNorm) for m in model.net) and any(
        isinstance(m, torch.nn.Dropout) for m in model.net)
    x = np.linspace(-3, 3, 121, dtype=np.float32)[:, None]
    est = ratios(model, x, np.zeros(len(x), np.int64))
    assert np.corrcoef(est, true_ratio(x[:, 0]))[0, 1] > 0.9
