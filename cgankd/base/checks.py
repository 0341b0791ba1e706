"""The constraints declared beside each config field and each distiller's setting:
``Annotated[float | None, Range(gt=0, le=1)]``, ``Annotated[str, OneOf("hard", "soft")]``. Checked
when the config is read (every value, None excepted), and written into the JSON schema of
params.yaml for editors."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any


def _num(v: float) -> str:
    return f"{v:g}"


@dataclass(frozen=True)
class Range:
    """Bounds of a number (of each item of a list of numbers); ``note`` says what null means or
    what the number is, in the error."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    note: str = ""

    def wanted(self, nullable: bool) -> str:
        lo = f"[{_num(self.ge)}" if self.ge is not None else f"({_num(self.gt)}" if self.gt is not None else ""
        hi = f"{_num(self.le)}]" if self.le is not None else f"{_num(self.lt)})" if self.lt is not None else ""
        if lo and hi:
            text = f"in {lo}, {hi}"
        elif lo:
            text = (">= " if lo[0] == "[" else "> ") + lo[1:]
        else:
            text = ("<= " if hi[-1] == "]" else "< ") + hi[:-1]
        text += " or null" if nullable else ""
        return f"{text} ({self.note})" if self.note else text

    def problem(self, v: Any, nullable: bool) -> str | None:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            return None
        ok = math.isfinite(v) and all((
            self.ge is None or v >= self.ge, self.gt is None or v > self.gt,
            self.le is None or v <= self.le, self.lt is None or v < self.lt))
        return None if ok else f"must be {self.wanted(nullable)}, got {v}"

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, name in (("ge", "minimum"), ("gt", "exclusiveMinimum"), ("le", "maximum"),
                          ("lt", "exclusiveMaximum")):
            if getattr(self, key) is not None:
                out[name] = getattr(self, key)
        return out


@dataclass(frozen=True)
class OneOf:
    """The values a field may take (a string choice, a resolution)."""

    values: tuple[Any, ...]
    note: str = ""

    def __init__(self, *values: Any, note: str = "") -> None:
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "note", note)

    def problem(self, v: Any, nullable: bool) -> str | None:
        if v in self.values:
            return None
        names = [str(x) for x in self.values]
        if nullable:
            return f"must be null{f' ({self.note})' if self.note else ''} or one of {', '.join(names)}, got {v!r}"
        return f"must be {', '.join(names[:-1])} or {names[-1]}, got {v!r}"

    def json(self) -> dict[str, Any]:
        return {"enum": list(self.values)}


Constraint = Range | OneOf


Count = Annotated[int, Range(ge=0)]
Positive = Annotated[int, Range(ge=1)]
Rate = Annotated[float, Range(gt=0)]
Weight = Annotated[float, Range(ge=0)]
Fraction = Annotated[float, Range(ge=0, le=1)]
