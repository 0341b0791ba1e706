"""Regression make-fakes with hand-made modules: a 'generator' that paints its label (plus
noise of known size) and a 'teacher' that reads it back, so filter and relabelling are exact."""

import numpy as np
import pytest
import torch
from conftest import shrunk
from torch import nn

from cgankd.data.prepared import Meta
from cgankd.fakes.make import label_grid, make_fakes


class PaintLabel(nn.Module):
    """G(z, y): a flat image of brightness y + 0.2 * z[0], in [-1, 1]."""

    num_classes = None

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        v = (y + 0.2 * z[:, 0]).clamp(0, 1) * 2 - 1
        return v[:, None, None, None].expand(-1, 1, 4, 4).contiguous()


class ReadBrightness(nn.Module):
    """Teacher: the mean pixel value (input in [0, 1]) is its scaled prediction."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=[1, 2, 3])[:, None] + 0 * self.dummy


META = Meta(task="regression", source="hand", channels=1, resolution=4, label_range=[0.0, 90.0])


def make(tmp_path, *extra):
    cfg = shrunk(tmp_path, "task=regression", "fakes.n_labels=5", "fakes.n_per_label=40",
                 "filter.burn_in=2000", *extra)
    return cfg, make_fakes(cfg, PaintLabel(), ReadBrightness(), META, seed=0)


def test_label_scaling_round_trip():
    y = np.array([0.0, 12.5, 45.0, 89.9], np.float32)
    assert META.scale(y) == pytest.approx(y / 90)
    assert META.unscale(META.scale(y)) == pytest.approx(y, abs=1e-4)
    assert label_grid(5).tolist() == pytest.approx([0, 0.25, 0.5, 0.75, 1])


def test_global_filter_keeps_the_rho_share_with_the_smallest_error(tmp_path):
    cfg, fs = make(tmp_path)  # rho null -> 0.7 for regression; adjust null -> on
    assert cfg.rho == 0.7 and cfg.adjust_labels
    assert len(fs.images) == 5 * 40 and np.bincount(fs.group).tolist() == [40] * 5
    cut = fs.cutoffs[0]
    assert np.all(fs.cutoffs == cut)  # one global cut-off
    assert cut == pytest.approx(np.quantile(fs.burn_in_score, 0.7))
    assert fs.score.max() < cut
    # |noise| is 0.2|z|, clipped at the range ends: the cut-off sits near the 0.7-quantile of it
    assert 0.1 < cut < 0.3
    assert fs.generated.sum() > len(fs.images)


def test_labels_replaced_by_the_teacher(tmp_path):
    _, fs = make(tmp_path)
    pixels = (fs.images.reshape(len(fs.images), -1).mean(1) / 255.0) * 90
    assert fs.labels == pytest.approx(pixels, abs=1e-3)
    assert fs.assigned == pytest.approx(META.unscale(label_grid(5)[fs.group]))
    assert np.abs(fs.labels - fs.assigned).max() > 1.0  # replacement changed them


def test_relabelling_off_and_filter_off(tmp_path):
    _, fs = make(tmp_path, "adjust.enabled=false", "filter.enabled=false")
    assert np.array_equal(fs.labels, fs.assigned)
    assert fs.generated.sum() == len(fs.images) == 200  # nothing dropped, nothing wasted


def test_subsampling_keeps_what_the_ratio_accepts(tmp_path):
    """A hand-made 'density ratio' of 2 where the painted brightness is at least the label and 0
    below: rejection sampling accepts about half (M = 2), and only fakes with non-negative noise."""

    def ratio(images, labels):
        return 2.0 * (images.reshape(len(images), -1).mean(1) / 255.0 >= labels - 1 / 255)

    cfg = shrunk(tmp_path, "task=regression", "fakes.n_labels=5", "fakes.n_per_label=40",
                 "filter.enabled=false", "adjust.enabled=false", "quality.n_fakes=400")
    fs = make_fakes(cfg, PaintLabel(), ReadBrightness(), META, seed=0, ratio=ratio)
    assert 0.45 < fs.acceptance_rate < 0.7 and fs.ratio_max == 2.0
    bright = fs.images.reshape(len(fs.images), -1).mean(1) / 255.0 * 90
    assert np.all(bright >= fs.assigned - 1.0)
    assert len(fs.images) == 200 and fs.generated.sum() > 300
    pool = fs.pool
    assert len(pool["images"]) == 400 and 0.4 < pool["subsampled"].mean() < 0.75
    assert "filtered" not in pool  # filtering is off


def test_draw_budget_stops_a_hopeless_subsampler(tmp_path):
    cfg = shrunk(tmp_path, "task=regression", "fakes.n_labels=5", "fakes.n_per_label=40",
                 "subsample.max_draw_factor=3")
    fs = make_fakes(cfg, PaintLabel(), ReadBrightness(), META, seed=0,
                    ratio=lambda x, y: np.where(np.arange(len(x)) % 50 == 0, 1.0, 0.0))
    assert fs.generated.sum() <= 3 * 200 and len(fs.images) < 200  # short, not stuck


def test_filter_burn_in_drawn_after_cdr_rs(tmp_path):
    """filter.burn_in_from=subsampled (the authors'): the cut-off is the quantile of fakes cDR-RS
    accepted. A 'ratio' that accepts only fakes within 0.02 of their label puts the cut-off below
    0.02, where the raw burn-in's sits near 0.2 (|noise| = 0.2 |z|)."""

    def ratio(images, labels):
        return 2.0 * (np.abs(images.reshape(len(images), -1).mean(1) / 255.0 - labels) < 0.02)

    sets = ("task=regression", "fakes.n_labels=5", "fakes.n_per_label=20", "filter.burn_in=200",
            "adjust.enabled=false", "quality.n_fakes=50", "subsample.max_draw_factor=40")
    raw = make_fakes(shrunk(tmp_path / "raw", *sets), PaintLabel(), ReadBrightness(), META, seed=0, ratio=ratio)
    after = make_fakes(shrunk(tmp_path / "after", *sets, "filter.burn_in_from=subsampled"), PaintLabel(),
                       ReadBrightness(), META, seed=0, ratio=ratio)
    assert raw.cutoffs[0] > 0.1 and after.cutoffs[0] < 0.02
    assert len(after.burn_in_score) >= 5 and after.burn_in_score.max() < 0.02


def test_one_m_per_label_raised_as_larger_ratios_appear(tmp_path):
    """subsample.m_per_label with m_quantile 1 (the authors'): each grid label keeps its own M, the
    largest ratio seen at that label; one shared M is the largest over all labels."""

    def ratio(images, labels):  # grows with the label: M at label k is about 1 + 4k
        return 1.0 + 4.0 * labels * (images.reshape(len(images), -1).mean(1) / 255.0 >= labels - 0.1)

    sets = ("task=regression", "fakes.n_labels=5", "fakes.n_per_label=10", "filter.enabled=false",
            "adjust.enabled=false", "quality.n_fakes=50", "filter.burn_in=200", "subsample.m_quantile=1.0")
    shared = make_fakes(shrunk(tmp_path / "a", *sets), PaintLabel(), ReadBrightness(), META, seed=0, ratio=ratio)
    per = make_fakes(shrunk(tmp_path / "b", *sets, "subsample.m_per_label=true"), PaintLabel(), ReadBrightness(),
                     META, seed=0, ratio=ratio)
    assert shared.ratio_max == pytest.approx(5.0)
    assert per.acceptance_rate > shared.acceptance_rate + 0.2  # low labels are not held to label 1's M


def test_m_comes_from_its_own_burn_in_when_asked(tmp_path):
    """subsample.m_burn_in (the authors' 100 / 500 per label): M's first value comes from that many fresh
    fakes at every grid label, scored in chunks; by default from the filter's burn-in (200 at random labels)."""
    calls: list[np.ndarray] = []

    def ratio(images, labels):
        calls.append(np.asarray(labels))
        return np.ones(len(images))

    sets = ("task=regression", "fakes.n_labels=5", "fakes.n_per_label=4", "filter.enabled=false",
            "adjust.enabled=false", "quality.n_fakes=20", "filter.burn_in=200", "subsample.m_per_label=true")
    make_fakes(shrunk(tmp_path / "a", *sets), PaintLabel(), ReadBrightness(), META, seed=0, ratio=ratio)
    assert len(calls[0]) == 200
    calls.clear()
    make_fakes(shrunk(tmp_path / "b", *sets, "subsample.m_burn_in=7"), PaintLabel(), ReadBrightness(), META,
               seed=0, ratio=ratio)
    np.testing.assert_allclose(calls[0], np.repeat(label_grid(5), 7))  # 7 at each of the 5 grid labels


class ReadBrightnessHigh(ReadBrightness):
    """Another judge: it reads every image 0.1 (a tenth of the range) brighter than it is."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + 0.1


def test_a_filter_net_apart_from_the_teacher_filters_and_relabels(tmp_path):
    """filter.net: the judge's errors set the cut-off and its readings the labels; the label scores (the
    verdict's) stay the teacher's."""
    cfg = shrunk(tmp_path, "task=regression", "fakes.n_labels=5", "fakes.n_per_label=40", "filter.burn_in=2000")
    fs = make_fakes(cfg, PaintLabel(), ReadBrightness(), META, seed=0, judge=ReadBrightnessHigh())
    pixels = fs.images.reshape(len(fs.images), -1).mean(1) / 255.0
    assert fs.labels == pytest.approx(np.clip(pixels + 0.1, 0, 1) * 90, abs=1e-3)  # relabelled by the judge
    assert fs.teacher_out[:, 0] == pytest.approx(pixels, abs=1e-4)  # scored by the teacher
    # the judge's error is the teacher's shifted by 0.1: it keeps other fakes than the teacher would
    _, by_teacher = make(tmp_path / "teacher")
    assert fs.cutoffs[0] != pytest.approx(by_teacher.cutoffs[0])
    judged = np.abs(fs.pool["images"].reshape(len(fs.pool["images"]), -1).mean(1) / 255.0 + 0.1
                    - fs.pool["labels"] / 90)
    assert fs.pool["score"] == pytest.approx(judged, abs=1e-3)


def test_the_whole_set_filter_keeps_the_rho_share_of_the_set_itself(tmp_path):
    """filter.burn_in_from=whole, the authors' regression filter: the set is made first (n_per_label a label),
    then the fakes under its own rho-quantile are kept, about rho of each label's."""
    _, fs = make(tmp_path, "filter.burn_in_from=whole")
    assert fs.made.tolist() == [40] * 5 and len(fs.burn_in_score) == 200  # the quantile's sample: the set
    assert fs.cutoffs[0] == pytest.approx(np.quantile(fs.burn_in_score, 0.7))
    assert len(fs.images) == int(np.sum(fs.burn_in_score < fs.cutoffs[0])) and 135 <= len(fs.images) <= 140
    assert fs.score.max() < fs.cutoffs[0]
    assert fs.generated.sum() == 200  # nothing drawn beyond the set (no subsampling here)
