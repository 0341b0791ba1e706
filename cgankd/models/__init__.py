"""The model zoo: ``build_model(name, in_channels, num_outputs, resolution)`` by registry name.

One family per file, each registering its names in ``MODELS`` (RepDistiller's CIFAR zoo names).
"""

from cgankd.models import (  # noqa: F401  (register)
    convnet,
    densenet,
    mobilenetv2,
    resnet,
    resnet_embed,
    resnet_extract,
    resnet_mlp,
    shufflenetv1,
    shufflenetv2,
    vgg,
    vgg_mlp,
    wrn,
)
from cgankd.models.zoo import MODELS, ImageModel, build_model, count_params, rebuild_model

__all__ = ["MODELS", "ImageModel", "build_model", "count_params", "rebuild_model"]
