"""ONNX export with a dynamic batch axis, ``onnx.checker``, and a parity check against PyTorch."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cgankd.base.errors import CgankdError
from cgankd.base.io import atomic_path
from cgankd.task import task_of

INPUT, OUTPUT = "images", "outputs"
METADATA_VERSION = 2  # 2: explicit ``preprocess`` / ``postprocess`` for servers


def serving_metadata(meta: Any, method: str) -> dict[str, Any]:
    """What a server needs, stored in the ONNX file so no server re-types it: how the training
    turned a stored image into the model input (uint8 C x H x W / 255; the [-1, 1] normalisation
    is inside the graph), and how outputs map to classes or to the label's unit."""
    c, r = meta.channels, meta.resolution
    if task_of(meta.task).categorical:
        post = {"kind": "softmax", "classes": list(meta.classes)}
    else:
        lo, hi = (float(v) for v in meta.label_range)
        post = {"kind": "affine", "scale": hi - lo, "offset": lo, "unit": meta.label_unit}
    return {"cgankd_metadata": METADATA_VERSION, "task": meta.task, "source": meta.source,
            "classes": meta.classes, "label_range": meta.label_range, "label_unit": meta.label_unit,
            "input": f"float32 N x {c} x {r} x {r} in [0, 1]",
            "output": "logits" if task_of(meta.task).categorical else "label scaled to [0, 1]",
            "preprocess": {"layout": "NCHW", "channels": c, "height": r, "width": r,
                           "color": "L" if c == 1 else "RGB", "dtype": "uint8", "divide_by": 255.0,
                           "range": [0.0, 1.0], "resize": "none"},
            "postprocess": post, "method": method, "precision": "fp32"}


def export_onnx(model: torch.nn.Module, path: Path, channels: int, resolution: int,
                opset: int, dynamo: bool, metadata: dict[str, Any] | None = None) -> None:
    """``metadata`` (JSON-encoded values) goes into the model's ``metadata_props``: what a server
    needs to turn outputs into classes or values in the label's unit."""
    import json

    import onnx

    model = model.eval()
    example = torch.rand(2, channels, resolution, resolution)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            batch = torch.export.Dim("batch", min=1, max=4096)
            prog = torch.onnx.export(model, (example,), dynamo=True, input_names=[INPUT],
                                     output_names=[OUTPUT], dynamic_shapes=({0: batch},),
                                     opset_version=opset)
            prog.save(str(tmp))
        else:
            torch.onnx.export(model, (example,), str(tmp), dynamo=False, input_names=[INPUT],
                              output_names=[OUTPUT], opset_version=opset,
                              dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}})
        proto = onnx.load(str(tmp))
        for key, value in (metadata or {}).items():
            proto.metadata_props.add(key=key, value=json.dumps(value))
        onnx.checker.check_model(proto, full_check=True)
        onnx.save(proto, str(tmp))


def session(path: Path, providers: list[str] | None = None):
    """An onnxruntime session on the CPU by default (the server's session builder)."""
    from cgankd.serve.runtime import make_session

    return make_session(path, providers or ["CPUExecutionProvider"])


def parity(model: torch.nn.Module, path: Path, channels: int, resolution: int, atol: float,
           batches: tuple[int, ...] = (1, 64), seed: int = 0) -> dict[str, Any]:
    """Max |onnxruntime - PyTorch| at each batch size; raises if any exceeds ``atol``."""
    sess = session(path)
    gen = torch.Generator().manual_seed(seed)
    report: dict[str, Any] = {"atol": atol}
    for b in batches:
        x = torch.rand(b, channels, resolution, resolution, generator=gen)
        with torch.no_grad():
            ref = model.eval()(x).numpy()
        got = sess.run([OUTPUT], {INPUT: x.numpy()})[0]
        if got.shape != ref.shape:
            raise CgankdError(str(path), f"ONNX output shape {got.shape} != PyTorch {ref.shape} at batch {b}")
        report[f"max_abs_diff_batch{b}"] = float(np.abs(got - ref).max())
    worst = max(v for k, v in report.items() if k.startswith("max_abs"))
    report["ok"] = worst <= atol
    if not report["ok"]:
        raise CgankdError(str(path), f"ONNX/PyTorch parity failed: max |diff| {worst:.3g} > atol {atol}")
    return report
