"""How to add an extra (pyproject.toml) to this install, by path: cgankd is published on no package
index, so a bare ``pip install cgankd[...]`` would install whatever an index serves under that name."""

from __future__ import annotations

import shlex
from pathlib import Path


def install_hint(extra: str) -> str:
    """``pip install -e '<checkout>[extra]'`` for a checkout (an editable install, as `make` makes), else
    the same from the user's own copy of the source."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file():
        return f"pip install -e {shlex.quote(f'{root}[{extra}]')}"
    return f"pip install '<your cgankd checkout or wheel>[{extra}]'"
