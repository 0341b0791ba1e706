"""The model zoo: ``build_model(name, in_channels, num_outputs, resolution)`` by registry name."""

from cgankd.models import convnet, resnet  # noqa: F401  (register)
from cgankd.models.registry import MODELS, ImageModel, build_model, count_params, rebuild_model

__all__ = ["MODELS", "ImageModel", "build_model", "count_params", "rebuild_model"]
