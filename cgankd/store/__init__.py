"""One home for model files and the output layout: the file format (``files``), the kinds of
model file (``kinds``) and where each stage writes (``layout``)."""

from cgankd.store.files import FORMAT, KINDS, plain, read, save
from cgankd.store.kinds import (
    load,
    load_model,
    save_dre,
    save_extractor,
    save_gan_generator,
    save_model,
    save_vkd_generator,
)
from cgankd.store.layout import PATHS, PER_METHOD, Layout

__all__ = ["FORMAT", "KINDS", "PATHS", "PER_METHOD", "Layout", "load", "load_model", "plain", "read", "save",
           "save_dre", "save_extractor", "save_gan_generator", "save_model", "save_vkd_generator"]
