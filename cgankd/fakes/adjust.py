"""Label adjustment (docs/method.md stage 6): replace the assigned label by the teacher's prediction."""

from __future__ import annotations

import numpy as np

from cgankd.task import task_of


def adjust_labels(teacher_outputs: np.ndarray, task: str) -> np.ndarray:
    """Classification: the teacher's argmax class; regression: its predicted (scaled) value."""
    if task_of(task).categorical:
        return teacher_outputs.argmax(axis=1).astype(np.int64)
    return teacher_outputs.reshape(-1).astype(np.float32)
