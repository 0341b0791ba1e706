"""The fakes a student trains on when fewer are wanted than were made (``student.n_fakes``): the
cGAN-KD authors make 3,000-5,000 per class and train on 100,000 of them (their ``--nfake``), drawn at
random, ``n // C`` from each class and the remainder from the last; a regression set is drawn at
random as a whole. Seeded: the same subset every run."""

from __future__ import annotations

import numpy as np

from cgankd.data.prepared import Split


def take(fakes: Split, n: int, num_classes: int | None, seed: int) -> Split:
    """At most ``n`` of ``fakes``, class-balanced when ``num_classes`` is given; all when ``n`` >= their count."""
    if n >= len(fakes):
        return fakes
    rng = np.random.default_rng(seed)
    if num_classes is None:
        idx = rng.choice(len(fakes), size=n, replace=False)
    else:
        labels = np.asarray(fakes.labels).astype(np.int64)
        parts = []
        for c in range(num_classes):
            want = n // num_classes if c < num_classes - 1 else n - (n // num_classes) * c
            have = np.flatnonzero(labels == c)
            parts.append(rng.choice(have, size=min(want, len(have)), replace=False))
        idx = np.concatenate(parts)
    idx = np.sort(idx)
    return Split(fakes.images[idx], fakes.labels[idx])
