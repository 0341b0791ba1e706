"""An int8 twin of the exported student: onnxruntime's static quantization (QDQ, int8 weights per
channel, uint8 activations), calibrated on images of the training side only: the kept fakes and
the real training split, never validation or test data. The twin carries the fp32 model's serving
metadata with ``precision: int8``, so ``cgankd serve`` and ``/metadata`` say what is served.

The evaluate stage scores it on the test split beside the fp32 ONNX model (``int8_report``), and
the register stage logs it only when it loses no more than ``export.int8_max_drop`` accuracy points
(classification) or ``export.int8_max_mae_increase`` of the fp32 MAE (regression).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from cgankd.base.io import atomic_path
from cgankd.task import task_of

CALIBRATION_BATCH = 32


def calibration_set(reals: np.ndarray, fakes: np.ndarray | None, n: int,
                    seed: int) -> tuple[np.ndarray, dict[str, int]]:
    """Up to ``n`` uint8 images: half kept fakes (when there are any), the rest real training images."""
    rng = np.random.default_rng(seed)
    n_fake = min(n // 2, len(fakes)) if fakes is not None else 0
    n_real = min(n - n_fake, len(reals))
    parts = [reals[rng.choice(len(reals), n_real, replace=False)]]
    if n_fake:
        parts.append(fakes[rng.choice(len(fakes), n_fake, replace=False)])
    return np.concatenate(parts), {"real": int(n_real), "fakes": int(n_fake)}


def twin_metadata(twin, props: list[tuple[str, str]], precision: str) -> None:
    """``twin`` (an ONNX proto) gets the fp32 model's serving metadata ``props`` with ``precision`` set."""
    del twin.metadata_props[:]
    for key, value in props:
        twin.metadata_props.add(key=key, value=json.dumps(precision) if key == "precision" else value)
    if not any(key == "precision" for key, _ in props):
        twin.metadata_props.add(key="precision", value=json.dumps(precision))


def quantize_int8(fp32: Path, out: Path, images: np.ndarray, divide_by: float = 255.0) -> None:
    """``images``: uint8 N x C x H x W (``calibration_set``). Writes ``out`` atomically."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    proto = onnx.load(str(fp32))
    name = proto.graph.input[0].name
    x = images.astype(np.float32) / np.float32(divide_by)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(x[i:i + CALIBRATION_BATCH] for i in range(0, len(x), CALIBRATION_BATCH))

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {name: batch}

    with tempfile.TemporaryDirectory(prefix="cgankd-int8-") as tmp, atomic_path(out) as dst:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        q = onnx.load(str(dst))
        twin_metadata(q, [(p.key, p.value) for p in proto.metadata_props], "int8")
        onnx.save(q, str(dst))


def onnx_outputs(path: Path, images: np.ndarray, divide_by: float = 255.0, batch: int = 256) -> np.ndarray:
    """Raw outputs of an ONNX file on uint8 images, on the CPU."""
    from cgankd.serve.runtime import make_session

    sess = make_session(path, ["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    out = [sess.run(None, {name: images[i:i + batch].astype(np.float32) / np.float32(divide_by)})[0]
           for i in range(0, len(images), batch)]
    return np.concatenate(out)


def int8_report(task: str, fp32: float, int8: float, max_drop: float, max_mae_increase: float) -> dict[str, Any]:
    """Both ONNX models' test metric (scored by the caller), the loss, and whether the int8 one may be
    registered."""
    t = task_of(task)
    if t.categorical:
        loss, limit = fp32 - int8, max_drop
        words = f"{loss:+.2f} accuracy points lost (limit {max_drop:g})"
    else:
        loss, limit = int8 / max(fp32, 1e-12) - 1.0, max_mae_increase
        words = f"MAE {loss * 100:+.2f}% (limit {max_mae_increase * 100:g}%)"
    return {f"fp32_test_{t.metric}": fp32, f"int8_test_{t.metric}": int8, "loss": loss,
            "registrable": bool(loss <= limit), "why": words}
