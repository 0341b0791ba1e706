"""The two tasks, classification and regression: what differs between them, in one place.

A task knows its metric (accuracy in % or MAE in the label's unit) and which direction is better,
how labels are handled (class indices, or scalars in a range scaled to [0, 1] for training), how
fakes are grouped (per class, or per label window) and its published defaults (filter rho, label
adjustment, subsampling, the verdict's threshold). Code asks the task (``task_of(cfg.task)``)
instead of comparing its name. Plain Python: the CLI and the config import it without torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Task:
    name: str
    categorical: bool  # labels are class indices (else scalars in a range, scaled to [0, 1] to train)
    metric: str  # the key of metrics files: val_<metric>, test_<metric>
    higher_is_better: bool
    metric_words: str  # how a difference of the metric reads: "+1.20 points of accuracy"
    label_column: str  # the first column of per-label tables
    group_column: str  # how fakes are grouped in the quality tables: per class or per label window
    score_words: str  # the teacher's score of one fake
    hard_loss: str  # the key of the loss on true labels: cross-entropy or MSE
    file_source: str  # the data source of image files on disk (`cgankd data folder` writes it)
    mirror_invariant: bool  # a horizontal flip keeps the label (a mirrored object changes its yaw)
    default_source: str  # data.source=auto: the embedded renderer of this task
    default_rho: float  # filter.rho=null: the paper's quantile
    adjust_labels: bool  # adjust.enabled=null: the paper's default
    subsample: bool  # subsample.enabled=null: what the ablation on the embedded data chose
    min_relative_score: float  # fakes.min_relative_score=null: the verdict's threshold (docs/results.md)

    def better(self, a: float, b: float) -> bool:
        """``a`` is a better metric than ``b``."""
        return a > b if self.higher_is_better else a < b

    def unit(self, label_unit: str | None) -> str:
        """The metric's unit: ``%`` for accuracy, the label's unit for an MAE."""
        return "%" if self.categorical else (label_unit or "")

    def num_outputs(self, num_classes: int) -> int:
        """The network's outputs: a logit per class, or one scaled value."""
        return num_classes if self.categorical else 1

    def groups(self, num_classes: int) -> int | None:
        """The number of label groups (classes), None for a continuous label."""
        return num_classes if self.categorical else None

    def fakes_per_group(self, fakes: Any) -> int:
        """The fakes to keep per class (``fakes.n_per_class``) or per label (``fakes.n_per_label``)."""
        return fakes.n_per_class if self.categorical else fakes.n_per_label


CLASSIFICATION = Task("classification", categorical=True, metric="acc", higher_is_better=True,
                      metric_words="points of accuracy", label_column="class", group_column="class",
                      score_words="cross-entropy of the assigned class", hard_loss="loss_ce",
                      file_source="imagefolder", mirror_invariant=True, default_source="objects", default_rho=0.9,
                      adjust_labels=False, subsample=True, min_relative_score=0.85)
REGRESSION = Task("regression", categorical=False, metric="mae", higher_is_better=False, metric_words="MAE",
                  label_column="label", group_column="window_centre", score_words="|teacher - label|, scaled",
                  hard_loss="loss_mse", file_source="csv", mirror_invariant=False, default_source="rc",
                  default_rho=0.7, adjust_labels=True, subsample=False, min_relative_score=0.45)
TASKS = {t.name: t for t in (CLASSIFICATION, REGRESSION)}


def task_of(name: str) -> Task:
    """The task called ``name`` (config validation has already refused any other)."""
    if name not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {name!r}")
    return TASKS[name]
