"""Passwords out of what is printed: ``scheme://user:password@host`` becomes ``scheme://user:***@host``
wherever it stands in a text (a tracking URI in a message, a server's error that quotes its URL)."""

from __future__ import annotations

import re

USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/:@\s]*):[^@\s/]*@")


def redact(text: str) -> str:
    return USERINFO.sub(r"\g<head>:***@", text)
