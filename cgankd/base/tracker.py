"""What a stage logs to: ``NullTracker`` logs nothing (tracking off, a rank other than 0, a stage
function called directly); the MLflow-backed tracker of ``cgankd.ops.tracking`` has the same four
methods. A stage needs only this protocol, never MLflow.
``log_input`` names a data set the run read (its DVC md5 as the digest, cgankd/ops/datasets.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class NullTracker:
    run_id: str | None = None

    def log_params(self, params: dict[str, Any]) -> None: ...
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None: ...
    def log_artifact(self, path: str | Path | None, folder: str | None = None) -> None: ...
    def set_tags(self, tags: dict[str, str]) -> None: ...
    def log_input(self, name: str, path: Path, context: str) -> None: ...
