"""The registered student as an MLflow pyfunc model that answers like ``cgankd serve``.

``mlflow models serve -m models:/<name>@champion`` (or ``mlflow.pyfunc.load_model``) gives, for a
float32 ``N x C x H x W`` batch in [0, 1] of any size, one answer per input: ``class``, ``index``
and ``probabilities`` by class name (classification), or ``value`` and ``unit`` in the label's unit
(regression), computed from the ONNX file with the card it carries (cgankd/serve/card.py), as
``/predict`` computes them. The ONNX file is the model's only artifact, so ``cgankd serve`` and its
sha256 check (cgankd/ops/model_registry.py) read the same file.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

try:  # the track extra: the class is what the registry pickles and MLflow loads
    from mlflow.pyfunc import PythonModel
except ImportError:  # pragma: no cover - cgankd serve alone needs no MLflow
    PythonModel = object  # type: ignore[assignment,misc]

ARTIFACT = "student_onnx"


# MLflow asks, whenever it wraps predict, for type hints it would read as a schema of list inputs; the
# signature is given instead (register), so this one message is silenced where the class is used
warnings.filterwarnings("ignore", message=".*Add type hints to the `predict` method", category=UserWarning)


class StudentModel(PythonModel):  # type: ignore[misc]
    """The ONNX student behind MLflow's pyfunc interface (``load_context`` opens it once)."""

    def load_context(self, context: Any) -> None:
        from pathlib import Path

        from cgankd.serve.runtime import load_onnx

        self.served = load_onnx(Path(context.artifacts[ARTIFACT]), providers="auto")

    @staticmethod
    def artifacts(onnx_path: Any) -> dict[str, str]:
        return {ARTIFACT: str(onnx_path)}

    # no type hints: MLflow reads predict's hints as a schema of list inputs, and the signature is given
    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
        from cgankd.serve.decode import array

        x = np.asarray(model_input)
        return self.served.predict(array(x, self.served.card, "input", max_batch=max(len(x), 1)))
