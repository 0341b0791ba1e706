"""The registered student as an MLflow pyfunc model that answers like ``cgankd serve``.

``mlflow models serve -m models:/<name>@champion`` (or ``mlflow.pyfunc.load_model``) gives, for a
float32 ``N x C x H x W`` batch in [0, 1] of any size, one answer per input: ``class``, ``index``
and ``probabilities`` by class name (classification), or ``value`` and ``unit`` in the label's unit
(regression), computed from the ONNX file with the card it carries (cgankd/serve/card.py), as
``/predict`` computes them. The ONNX file is the model's only artifact, so ``cgankd serve`` and its
sha256 check (cgankd/ops/model_registry.py) read the same file.
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:  # the track extra: the class is what the registry pickles and MLflow loads
    from mlflow.pyfunc import PythonModel
except ImportError:  # pragma: no cover - cgankd serve alone needs no MLflow
    PythonModel = object  # type: ignore[assignment,misc]

ARTIFACT = "student_onnx"


class StudentModel(PythonModel):  # type: ignore[misc]
    """The ONNX student behind MLflow's pyfunc interface (``load_context`` opens it once)."""

    def load_context(self, context: Any) -> None:
        from pathlib import Path

        from cgankd.serve.runtime import load_onnx

        self.served = load_onnx(Path(context.artifacts[ARTIFACT]), providers="auto")

    @staticmethod
    def artifacts(onnx_path: Any) -> dict[str, str]:
        return {ARTIFACT: str(onnx_path)}


def _predict(self: StudentModel, context: Any, model_input,  # noqa: ANN001 (MLflow reads a hint as a schema)
             params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One answer per input of a float32 N x C x H x W batch in [0, 1] (or uint8 pixels), as /predict's."""
    from cgankd.serve.decode import array

    x = np.asarray(model_input)
    return self.served.predict(array(x, self.served.card, "input", max_batch=max(len(x), 1)))


# set after the class exists, model_input without a hint: MLflow reads predict's hint as a schema of list
# inputs, and warns at class creation (through a filter of its own) when there is none; the signature
# given at register is the schema instead
StudentModel.predict = _predict  # type: ignore[method-assign]
