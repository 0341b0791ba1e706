"""Data sources: each returns a ``Pool`` (labelled training pool + test set) from the config.

Importing this package registers every source in ``SOURCES``.
"""

from cgankd.data.sources import embedded, files, h5, torchvision_layout  # noqa: F401  (register)
from cgankd.data.sources.base import SOURCES, Pool

__all__ = ["SOURCES", "Pool"]
