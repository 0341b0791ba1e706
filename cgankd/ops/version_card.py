"""The model card of a registered student: the markdown description of its model version, so the
registry says what a version is without opening its run (the MLflow way: a version's description
and tags). Built from the files the pipeline wrote: the headline ``metrics.json``, the export's
``parity.json`` and, when the method used fakes, ``metrics/fakes.json``.
"""

from __future__ import annotations

from typing import Any

from cgankd.config import Config
from cgankd.data.prepared import Meta
from cgankd.task import task_of


def _num(value: Any) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4g}" if isinstance(value, float) else "n/a"


def model_card(cfg: Config, meta: Meta, headline: dict[str, Any], parity: dict[str, Any],
               fakes: dict[str, Any] | None, run_id: str | None) -> str:
    """Markdown: data, teacher, method, fakes kept and their quality, validation and test metrics,
    ONNX parity, and the run that made it."""
    method, k = parity["method"], task_of(meta.task).metric
    unit = "%" if k == "acc" else f" {meta.label_unit or ''}".rstrip()
    params = headline.get(f"{method}_params")
    rows = [
        ("data", f"{meta.task} on `{meta.source}`, {meta.channels}x{meta.resolution}x{meta.resolution}, "
                 + (f"{meta.num_classes} classes" if meta.num_classes else f"labels in {meta.label_range}")
                 + f", {meta.counts.get('train', 'n/a')} training images"),
        ("student", f"`{cfg.student.arch}` ({_num(params)} parameters), method `{method}`, selected by "
                    f"{parity.get('selected_by', 'validation')}"),
        ("teacher", f"`{cfg.teacher.arch}` ({_num(headline.get('teacher_params'))} parameters), test {k} "
                    f"{_num(headline.get(f'teacher_test_{k}'))}{unit}"),
        (f"validation {k}", f"{_num(headline.get(f'{method}_val_{k}'))}{unit} (NOKD "
                            f"{_num(headline.get(f'nokd_val_{k}'))}{unit})"),
        (f"test {k}", f"{_num(headline.get(f'{method}_test_{k}'))}{unit} (NOKD "
                      f"{_num(headline.get(f'nokd_test_{k}'))}{unit}, teacher "
                      f"{_num(headline.get(f'teacher_test_{k}'))}{unit})"),
    ]
    if fakes is not None and method.startswith("cgankd"):
        rows.append(("fakes", f"{fakes.get('n_fakes', 'n/a')} kept; raw fakes' relative label score "
                              f"{_num(fakes.get('raw_relative_label_score'))}: {fakes.get('verdict', '')}"))
    diff = max(parity.get("max_abs_diff_batch1", float("nan")), parity.get("max_abs_diff_batch64", float("nan")))
    rows.append(("ONNX", f"opset {parity.get('opset')}, largest difference from PyTorch {diff:.2g} (tolerance "
                         f"{parity.get('atol')}): {'ok' if parity.get('ok') else 'FAILED'}"))
    rows.append(("made by", f"MLflow run `{run_id or 'n/a'}`, profile `{cfg.profile or 'none'}`, seed {cfg.seed}"))
    table = "\n".join(f"| {a} | {b.replace('|', '/')} |" for a, b in rows)
    return f"## {cfg.model_name}: the `{method}` student\n\n| | |\n|---|---|\n{table}\n"
