"""The output layout: where every stage of one pipeline folder (``cfg.out_dir``) writes, by key.

The one home of every file name a stage writes. The stage table (``cgankd.pipeline.spec``) names
its inputs and outputs with these keys, dvc.yaml is rendered from them, and the stages find their
files through ``Layout`` (``tests/test_boundaries.py`` fails on a file name written in a stage). A
key of ``PER_METHOD`` needs a student method: ``layout.path("student", "cgankd")``, or
``"student:cgankd"`` as one key; its ``{students}`` is ``students/<method>``, or
``students/<student.tag>/<method>`` (students of several architectures beside one teacher), and
its ``{tag}`` is ``<student.tag>_`` or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cgankd.config.schema import Config

PATHS = {  # key -> path under out_dir
    "prepared": "prepared", "prepared_meta": "prepared/meta.json", "data_grid": "plots/data_grid.png",
    "teacher_dir": "teacher", "teacher": "teacher/model.pt", "teacher_history": "teacher/history.csv",
    "teacher_metrics": "metrics/teacher.json",
    "filter_net_dir": "filter_net", "filter_net": "filter_net/model.pt", "filter_net_history": "filter_net/history.csv",
    "filter_net_metrics": "metrics/filter_net.json",
    "extractor_dir": "extractor", "extractor": "extractor/model.pt", "extractor_history": "extractor/history.csv",
    "extractor_metrics": "metrics/extractor.json",
    "gan_dir": "gan", "gan": "gan/generator.pt", "gan_last": "gan/generator_last.pt",
    "gan_history": "gan/history.csv", "gan_quality": "gan/quality.csv", "gan_quality_plot": "gan/quality.png",
    "gan_samples": "gan/samples.png", "gan_progress": "gan/progress", "gan_checkpoint": ".checkpoints/gan.pt",
    "fakes_dir": "fakes", "fakes": "fakes/fakes.npz", "dre": "fakes/dre.pt", "fakes_counts": "fakes/counts.json",
    "fakes_quality": "fakes/quality.json", "fakes_grid": "fakes/grid.png", "fakes_metrics": "metrics/fakes.json",
    "fakes_quality_plot": "plots/fakes_quality.png", "fakes_score_plot": "plots/fakes_score_hist.png",
    "fakes_score_csv": "plots/fakes_score_hist.csv", "fakes_intra_fid_csv": "plots/fakes_intra_fid.csv",
    "vkd_dir": "vkd", "vkd": "vkd/generator.pt", "vkd_history": "vkd/history.csv", "vkd_metrics": "metrics/vkd.json",
    "export_dir": "export", "onnx": "export/student.onnx", "parity": "export/parity.json",
    "onnx_int8": "export/student.int8.onnx", "onnx_fp16": "export/student.fp16.onnx",
    "report": "report.md", "metrics": "metrics.json", "headline": "headline.json",
    "evaluation_plot": "plots/evaluation.png", "per_label": "plots/per_label.csv",
    "registry": "registry.json",
}
PER_METHOD = {  # key -> path of a student method's file
    "student_dir": "{students}",
    "student": "{students}/model.pt",
    "student_last": "{students}/last.pt",
    "student_history": "{students}/history.csv",
    "student_skipped": "{students}/skipped.txt",
    "student_metrics": "metrics/student_{tag}{method}.json",
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
            m, tag = named or str(method), self.cfg.student.tag
            students = "/".join(["students", *([tag] if tag else []), m])
            return self.cfg.path(*PER_METHOD[key].format(students=students, tag=f"{tag}_" if tag else "",
                                                         method=m).split("/"))
        return self.cfg.path(*PATHS[key].split("/"))

    def rel(self, key: str, method: str | None = None) -> str:
        """The path under ``out_dir``, with forward slashes (as dvc.yaml writes it)."""
        return self.path(key, method).relative_to(self.cfg.path()).as_posix()
