"""An fp16 twin of the exported student for GPU serving (``export.fp16``): weights and activations in
fp16 (onnxruntime's float16 converter), inputs and outputs kept fp32, so that a client sends and gets
exactly what it does from the fp32 model. It carries the fp32 model's serving metadata with
``precision: fp16``.

The export checks it against the fp32 model on the same probe batches as the ONNX parity check, on the
serving provider: CUDA where it is usable, where the arithmetic is fp16. On the CPU provider onnxruntime
runs nodes it has no fp16 kernel for in fp32, between inserted casts, so there the check covers the
weights' rounding to fp16, not fp16 arithmetic; the report says which.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cgankd.base.errors import CgankdError
from cgankd.base.io import atomic_path
from cgankd.serve.quantize import twin_metadata

ATOL = 0.05  # |fp16 - fp32| of raw outputs (logits, or the scaled label) allowed by the check


def convert_fp16(fp32: Path, out: Path) -> None:
    """Writes ``out`` atomically: ``fp32`` with fp16 weights and arithmetic and fp32 inputs / outputs."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    proto = onnx.load(str(fp32))
    props = [(p.key, p.value) for p in proto.metadata_props]  # the converter may change proto in place
    half = convert_float_to_float16(proto, keep_io_types=True, disable_shape_infer=True)
    twin_metadata(half, props, "fp16")
    with atomic_path(out) as dst:
        onnx.save(half, str(dst))


def check_fp16(fp32: Path, fp16: Path, channels: int, resolution: int, providers: list[str],
               batches: tuple[int, ...] = (1, 64), seed: int = 0) -> dict[str, Any]:
    """Max |fp16 - fp32| at each batch size on ``providers`` (the serving choice); raises above ``ATOL``."""
    from cgankd.serve.runtime import make_session

    ref, half = make_session(fp32, providers), make_session(fp16, providers)
    provider = half.get_providers()[0]
    rng = np.random.default_rng(seed)
    report: dict[str, Any] = {"provider": provider, "atol": ATOL,
                              "arithmetic": "fp16" if provider == "CUDAExecutionProvider" else
                              "fp32 between casts (onnxruntime's CPU provider): the check covers fp16 weights"}
    for b in batches:
        x = rng.random((b, channels, resolution, resolution), dtype=np.float32)
        a = ref.run(None, {ref.get_inputs()[0].name: x})[0]
        h = half.run(None, {half.get_inputs()[0].name: x})[0]
        report[f"max_abs_diff_batch{b}"] = float(np.abs(a - h).max())
    worst = max(v for k, v in report.items() if k.startswith("max_abs"))
    if worst > ATOL:
        raise CgankdError(str(fp16), f"fp16 twin differs from the fp32 model by {worst:.3g} > {ATOL}")
    return report
