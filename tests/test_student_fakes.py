"""student.fakes: a fake set made elsewhere is checked against the real data's format."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shrunk

from cgankd.base.errors import CgankdError
from cgankd.data.prepared import Meta
from cgankd.stages.train_student import load_fakes

META = Meta("classification", "objects", 3, 16, classes=[f"c{i}" for i in range(4)])


def write(path, images, labels):
    np.savez(path, fake_images=images, fake_labels=labels)
    return path


def test_a_valid_external_fake_set_loads(tmp_path):
    p = write(tmp_path / "f.npz", np.zeros((5, 3, 16, 16), np.uint8), np.array([0, 1, 2, 3, 0]))
    split = load_fakes(shrunk(tmp_path, f"student.fakes={p}"), META)
    assert len(split) == 5


def test_an_empty_fake_set_loads(tmp_path):
    """make-fakes may keep nothing (cDR-RS rejected every round): the student then trains on real data."""
    p = write(tmp_path / "e.npz", np.zeros((0, 3, 16, 16), np.uint8), np.zeros(0, np.int64))
    assert len(load_fakes(shrunk(tmp_path, f"student.fakes={p}"), META)) == 0


@pytest.mark.parametrize("images, labels, problem", [
    (np.zeros((5, 1, 16, 16), np.uint8), np.zeros(5), "uint8 N x 3 x 16 x 16"),
    (np.zeros((5, 3, 16, 16), np.float32), np.zeros(5), "uint8"),
    (np.zeros((5, 3, 16, 16), np.uint8), np.zeros(4), "one per image"),
    (np.zeros((5, 3, 16, 16), np.uint8), np.array([0, 1, 2, 3, 4]), r"class indices in \[0, 4\)"),
    (np.zeros((5, 3, 16, 16), np.uint8), np.array([0, 1, np.nan, 3, 0]), "finite"),
])
def test_bad_fake_sets_are_one_line_errors(tmp_path, images, labels, problem):
    p = write(tmp_path / "f.npz", images, labels)
    with pytest.raises(CgankdError, match=problem):
        load_fakes(shrunk(tmp_path, f"student.fakes={p}"), META)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(CgankdError, match="check student.fakes"):
        load_fakes(shrunk(tmp_path, f"student.fakes={tmp_path / 'none.npz'}"), META)
    np.savez(tmp_path / "g.npz", images=np.zeros((1, 3, 16, 16), np.uint8))
    with pytest.raises(CgankdError, match="fake_images and fake_labels"):
        load_fakes(shrunk(tmp_path, f"student.fakes={tmp_path / 'g.npz'}"), META)
    with pytest.raises(CgankdError, match="run `cgankd make-fakes` first"):
        load_fakes(shrunk(tmp_path), META)


def test_student_n_fakes_draws_a_seeded_class_balanced_subset():
    """student.n_fakes as the authors' --nfake: n // C from each class (the remainder from the last),
    at random without replacement, the same draw for the same seed; all of them when n is not smaller."""
    from cgankd.data.prepared import Split
    from cgankd.train.fake_subset import take

    labels = np.repeat(np.arange(4), [30, 30, 30, 5])  # class 3 has fewer than its share
    images = np.arange(len(labels))[:, None, None, None].astype(np.uint8) * np.ones((1, 3, 2, 2), np.uint8)
    fakes = Split(images, labels)
    got = take(fakes, 42, 4, seed=7)
    assert np.bincount(got.labels, minlength=4).tolist() == [10, 10, 10, 5]  # 42 // 4, and class 3's 5 (of 12)
    assert np.array_equal(got.images[:, 0, 0, 0], np.sort(got.images[:, 0, 0, 0]))  # in the set's order
    assert len(set(got.images[:, 0, 0, 0].tolist())) == len(got)  # no image twice
    assert np.array_equal(take(fakes, 42, 4, seed=7).images, got.images)
    assert not np.array_equal(take(fakes, 42, 4, seed=8).images, got.images)
    assert take(fakes, 95, 4, seed=7) is fakes and take(fakes, 1000, None, seed=7) is fakes
    values = Split(images, np.linspace(0, 1, len(labels)).astype(np.float32))  # regression: a plain draw
    assert len(take(values, 20, None, seed=7)) == 20
