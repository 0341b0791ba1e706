"""What the exported model says about itself (ONNX ``metadata_props``): the input contract, the
training preprocessing and how outputs become classes or values in the label's unit."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cgankd.base.errors import CgankdError
from cgankd.task import task_of

NEEDED = ("task", "preprocess", "postprocess")


@dataclass(frozen=True)
class ModelCard:
    task: str
    channels: int
    height: int
    width: int
    color: str
    divide_by: float
    post: dict[str, Any]
    props: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_props(cls, raw: dict[str, str], where: str) -> ModelCard:
        props = {}
        for k, v in raw.items():
            try:
                props[k] = json.loads(v)
            except json.JSONDecodeError:
                props[k] = v
        missing = [k for k in NEEDED if k not in props]
        if missing:
            raise CgankdError(where, f"ONNX metadata lacks {', '.join(missing)} (exported before serving "
                              "metadata existed); re-run `cgankd export` and `cgankd register`")
        pre = props["preprocess"]
        return cls(task=props["task"], channels=int(pre["channels"]), height=int(pre["height"]),
                   width=int(pre["width"]), color=pre["color"], divide_by=float(pre["divide_by"]),
                   post=props["postprocess"], props=props)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.channels, self.height, self.width

    def preprocess(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 pixels N x C x H x W -> the model input, as the training did it."""
        return pixels.astype(np.float32) / np.float32(self.divide_by)

    def postprocess(self, outputs: np.ndarray) -> list[dict[str, Any]]:
        """Rows of model outputs -> one dict per input."""
        return POSTPROCESS[self.post["kind"]](outputs, self.post)

    def public(self) -> dict[str, Any]:
        out = {"task": self.task, "input_shape": ["N", *self.shape], "input_color": self.color,
               "preprocess": self.props["preprocess"], "method": self.props.get("method"),
               "precision": self.props.get("precision", "fp32"),
               "source": self.props.get("source")}
        if task_of(self.task).categorical:
            out["classes"] = self.post["classes"]
        else:
            out["label_range"] = self.props.get("label_range")
            out["label_unit"] = self.post.get("unit", "")
        return out


def probabilities(outputs: np.ndarray) -> np.ndarray:
    """A classifier's logits (N x K) -> probabilities, float64."""
    z = outputs.astype(np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def values(outputs: np.ndarray, post: dict[str, Any]) -> np.ndarray:
    """A regressor's outputs (N x 1, the label scaled to [0, 1]) -> values in the label's unit, float64."""
    return outputs.reshape(len(outputs), -1)[:, 0].astype(np.float64) * post["scale"] + post["offset"]


def _softmax(outputs: np.ndarray, post: dict[str, Any]) -> list[dict[str, Any]]:
    p = probabilities(outputs)
    classes = post["classes"]
    rows = []
    for row in p:
        i = int(row.argmax())
        rows.append({"class": classes[i], "index": i,
                     "probabilities": {c: round(float(v), 6) for c, v in zip(classes, row, strict=True)}})
    return rows


def _affine(outputs: np.ndarray, post: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"value": float(v), "unit": post.get("unit", "")} for v in values(outputs, post)]


POSTPROCESS = {"softmax": _softmax, "affine": _affine}
