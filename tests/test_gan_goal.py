"""Training the GAN to a goal, not a count: the target label score, the wall-clock budget, the
iteration cap that can be raised on a checkpointed GAN, and the best EMA generator kept."""

import numpy as np
import pytest
import torch

from cgankd.config import GanCfg
from cgankd.gan.stop import Stop
from cgankd.gan.train import train_gan
from cgankd.gan.watch import Watch


def _data():
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (20, 3, 16, 16)).astype(np.uint8), np.arange(20) % 4


def _cfg(iterations=12, **kw):
    return GanCfg(iterations=iterations, batch_size=8, z_dim=8, g_ch=4, d_ch=4, embed_dim=8,
                  checkpoint_every=5, ema_start=2, **kw)


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


class Ticker:
    """A fake clock: every reading is one second after the last."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


def test_raising_the_cap_trains_on_bit_identically(tmp_path):
    x, y = _data()
    g_straight, h_straight = train_gan(_cfg(10), x, y, 4, seed=0, ckpt_path=tmp_path / "a.pt")
    g_six, h_six = train_gan(_cfg(6), x, y, 4, seed=0, ckpt_path=tmp_path / "b.pt")
    assert len(h_six) == 6
    g_again, h_again = train_gan(_cfg(6), x, y, 4, seed=0, ckpt_path=tmp_path / "b.pt")
    assert len(h_again) == 6 and _same(g_six, g_again)  # the same cap: nothing more to train
    g_on, h_on = train_gan(_cfg(10), x, y, 4, seed=0, ckpt_path=tmp_path / "b.pt")
    assert [h["step"] for h in h_on] == list(range(1, 11))
    assert _same(g_on, g_straight) and h_on == h_straight


def test_target_stops_early_keeps_the_best_and_a_raised_target_trains_on(tmp_path):
    x, y = _data()
    scores = {2: 40.0, 4: 60.0, 6: 55.0, 8: 70.0, 10: 65.0, 12: 64.0}
    seen = []

    def watch(target):
        return Watch(lambda step, g: seen.append(step) or scores[step], every=2, target=target)

    w = watch(58.0)
    stop = Stop(12)
    g, hist = train_gan(_cfg(), x, y, 4, seed=0, ckpt_path=tmp_path / "t.pt", watch=w, stop=stop)
    assert stop.reason == "target" and hist[-1]["step"] == 4 and seen == [2, 4]
    ema4, _ = train_gan(_cfg(4), x, y, 4, seed=0, ckpt_path=tmp_path / "four.pt")
    assert _same(g, ema4)  # the best (step 4) is the last here
    seen.clear()
    w2, stop2 = watch(58.0), Stop(12)
    train_gan(_cfg(), x, y, 4, seed=0, ckpt_path=tmp_path / "t.pt", watch=w2, stop=stop2)
    assert seen == [] and stop2.reason == "target"  # re-run: the target still holds, no training
    w3, stop3 = watch(80.0), Stop(12)  # out of reach: trains on to the cap
    g3, hist3 = train_gan(_cfg(), x, y, 4, seed=0, ckpt_path=tmp_path / "t.pt", watch=w3, stop=stop3)
    assert stop3.reason == "iterations" and hist3[-1]["step"] == 12 and seen == [6, 8, 10, 12]
    assert w3.best == (8, 70.0)
    ema8, _ = train_gan(_cfg(8), x, y, 4, seed=0, ckpt_path=tmp_path / "eight.pt")
    best = {k: v for k, v in ema8.state_dict().items()}
    assert all(torch.equal(w3.best_state[k], best[k]) for k in best)  # the step-8 EMA generator, kept
    assert not _same(g3, ema8)  # ... and not the last one


def test_a_lucky_check_is_kept_only_when_other_fakes_confirm_it_across_a_resume(tmp_path):
    x, y = _data()
    checks = {2: 40.0, 4: 60.0, 6: 75.0, 8: 70.0, 10: 72.0, 12: 80.0}  # 6 and 12 beat every earlier check
    again = {2: 41.0, 4: 62.0, 6: 55.0, 12: 61.0}  # ... and score lower on the confirming fakes than 4
    asked = []

    def watch():
        return Watch(lambda s, g: checks[s], every=2, confirm=lambda s, g: asked.append(s) or again[s])

    w = watch()
    train_gan(_cfg(8), x, y, 4, seed=0, ckpt_path=tmp_path / "c.pt", watch=w)
    assert asked == [2, 4, 6] and w.best == (6, 75.0) and w.kept == (4, 62.0)
    w2 = watch()  # raise the cap: the candidates so far come back from the checkpoint
    train_gan(_cfg(12), x, y, 4, seed=0, ckpt_path=tmp_path / "c.pt", watch=w2)
    assert asked == [2, 4, 6, 12] and w2.kept == (4, 62.0)
    ema4, _ = train_gan(_cfg(4), x, y, 4, seed=0, ckpt_path=tmp_path / "four.pt")
    assert all(torch.equal(w2.best_state[k], v) for k, v in ema4.state_dict().items())


def test_a_checkpoint_from_before_confirmation_keeps_its_best_as_the_one_candidate():
    w = Watch(lambda s, g: 0.0, every=1)
    w.load({"watch": [[2, 40.0], [4, 60.0], [6, 50.0]]}, {"w": torch.zeros(1)})
    assert w.kept == (4, 60.0) and w.state()["confirmed"] == [[4, 60.0]]


def test_lower_is_better_target():
    w = Watch(lambda s, g: 0.0, every=1, higher_is_better=False, target=5.0)
    w.scores = [(1, 9.0), (2, 6.0)]
    assert not w.reached
    w.scores.append((3, 4.5))
    assert w.reached


def test_time_budget_stops_and_a_killed_run_resumes_to_the_same_stop(tmp_path):
    x, y = _data()
    minutes = 7.5 / 60  # the fake clock reads once per iteration: stops after about 7 iterations
    stop = Stop(100, minutes, clock=Ticker())
    w = Watch(lambda step, g: float(step), every=3)
    g, hist = train_gan(_cfg(100), x, y, 4, seed=0, ckpt_path=tmp_path / "a.pt", watch=w, stop=stop)
    assert stop.reason == "time" and stop.seconds >= 7.5
    last = hist[-1]["step"]
    assert last < 100 and w.scores[-1][0] == last  # the last generator is scored at the stop
    with pytest.raises(KeyboardInterrupt):
        train_gan(_cfg(100), x, y, 4, seed=0, ckpt_path=tmp_path / "b.pt", stop_after=5,
                  watch=Watch(lambda step, g: float(step), every=3), stop=Stop(100, minutes, clock=Ticker()))
    stop_b, w_b = Stop(100, minutes, clock=Ticker()), Watch(lambda step, g: float(step), every=3)
    g_b, hist_b = train_gan(_cfg(100), x, y, 4, seed=0, ckpt_path=tmp_path / "b.pt", watch=w_b, stop=stop_b)
    assert stop_b.reason == "time" and hist_b[-1]["step"] == last and _same(g, g_b)
    assert w_b.scores == w.scores
    stop_c = Stop(100, 2 * minutes, clock=Ticker())  # a larger budget trains on
    _, hist_c = train_gan(_cfg(100), x, y, 4, seed=0, ckpt_path=tmp_path / "b.pt", stop=stop_c,
                          watch=Watch(lambda step, g: float(step), every=3))
    assert stop_c.reason == "time" and hist_c[-1]["step"] > last


def test_stop_reasons_in_order():
    w = Watch(lambda s, g: 0.0, every=1, patience=1, target=50.0)
    stop = Stop(10, 1.0, clock=Ticker())
    assert stop.check(3, None) is None
    stop.seconds = 61.0
    assert stop.check(3, None) == "time"
    w.scores = [(1, 10.0), (2, 9.0)]
    assert stop.check(3, w) == "patience"
    w.scores.append((3, 55.0))
    assert stop.check(10, w) == "target"
    assert Stop(10).check(10, None) == "iterations"
