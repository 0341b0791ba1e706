"""Name -> object registries filled by decorators (models, data sources, distillers, ...)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from cgankd.base.errors import CgankdError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named table of callables, e.g. ``MODELS = Registry("model")``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        if name not in self._items:
            raise CgankdError(f"{self.kind} {name!r}", unknown(name, self._items))
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))


def unknown(name: str, known: Iterable[str]) -> str:
    """``unknown; did you mean X? choose one of: ...`` for a name not in ``known``."""
    names = sorted(known)
    close = difflib.get_close_matches(str(name), names, n=1)
    return f"unknown; {f'did you mean {close[0]}? ' if close else ''}choose one of: {', '.join(names)}"
