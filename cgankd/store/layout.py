"""The output layout: where every stage of one pipeline folder (``cfg.out_dir``) writes, by key.

The stage table (``cgankd.pipeline.spec``) names its inputs and outputs with these keys, dvc.yaml
is rendered from them, and the stages find their files through ``Layout``. A key of ``PER_METHOD``
needs a student method: ``layout.path("student", "cgankd")``, or ``"student:cgankd"`` as one key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cgankd.config import Config

PATHS = {  # key -> path under out_dir
    "prepared": "prepared", "prepared_meta": "prepared/meta.json", "data_grid": "plots/data_grid.png",
    "teacher_dir": "teacher", "teacher": "teacher/model.pt", "teacher_history": "teacher/history.csv",
    "teacher_metrics": "metrics/teacher.json",
    "extractor_dir": "extractor", "extractor": "extractor/model.pt", "extractor_metrics": "metrics/extractor.json",
    "gan_dir": "gan", "gan": "gan/generator.pt", "gan_last": "gan/generator_last.pt",
    "gan_quality": "gan/quality.csv", "gan_samples": "gan/samples.png", "gan_checkpoint": ".checkpoints/gan.pt",
    "fakes_dir": "fakes", "fakes": "fakes/fakes.npz", "dre": "fakes/dre.pt", "fakes_metrics": "metrics/fakes.json",
    "fakes_quality_plot": "plots/fakes_quality.png", "fakes_score_plot": "plots/fakes_score_hist.png",
    "fakes_score_csv": "plots/fakes_score_hist.csv", "fakes_intra_fid_csv": "plots/fakes_intra_fid.csv",
    "vkd_dir": "vkd", "vkd": "vkd/generator.pt", "vkd_metrics": "metrics/vkd.json",
    "export_dir": "export", "onnx": "export/student.onnx", "parity": "export/parity.json",
    "onnx_int8": "export/student.int8.onnx",
    "report": "report.md", "metrics": "metrics.json", "headline": "headline.json",
    "evaluation_plot": "plots/evaluation.png", "per_label": "plots/per_label.csv",
    "registry": "registry.json",
}
PER_METHOD: dict[str, Callable[[Config, str], Path]] = {  # key -> path of a student method's file
    "student_dir": lambda cfg, m: cfg.student_dir(m),
    "student": lambda cfg, m: cfg.student_dir(m) / "model.pt",
    "student_last": lambda cfg, m: cfg.student_dir(m) / "last.pt",
    "student_history": lambda cfg, m: cfg.student_dir(m) / "history.csv",
    "student_metrics": lambda cfg, m: cfg.student_metrics(m),
}


@dataclass(frozen=True)
class Layout:
    """Where each stage of one pipeline folder (``cfg.out_dir``) writes."""

    cfg: Config

    def path(self, key: str, method: str | None = None) -> Path:
        key, _, named = key.partition(":")
        if key in PER_METHOD:
            if not (named or method):
                raise ValueError(f"layout key {key!r} needs a student method")
            return PER_METHOD[key](self.cfg, named or str(method))
        return self.cfg.path(*PATHS[key].split("/"))

    def rel(self, key: str, method: str | None = None) -> str:
        """The path under ``out_dir``, with forward slashes (as dvc.yaml writes it)."""
        return self.path(key, method).relative_to(self.cfg.path()).as_posix()
