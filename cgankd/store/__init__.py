"""One home for model files: the file format (``files``) and the kinds of model file (``kinds``).
Where each stage writes is ``cgankd.config.layout``."""

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

__all__ = ["FORMAT", "KINDS", "load", "load_model", "plain", "read", "save",
           "save_dre", "save_extractor", "save_gan_generator", "save_model", "save_vkd_generator"]
