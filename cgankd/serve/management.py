"""Who may change what the server serves, and to what.

- ``POST /reload`` is the operator's: it needs ``Authorization: Bearer <token>``, the token coming
  from ``CGANKD_SERVE_TOKEN`` or a file readable by its owner alone (``serve.token_file``, mode
  0600, owned by the server's user). Without a token configured management is off and ``/reload``
  answers 403 saying how to turn it on. A token has at least ``MIN_TOKEN`` characters (``openssl rand
  -hex 32``); tokens are compared in constant time, and after ``FAILS`` wrong ones within ``WINDOW_S``
  seconds the server answers 429 without comparing until the window has passed.
- ``/reload`` loads the server's own source again (the champion alias may point at a new version
  now), or another alias or version *of the same registered model*; never a file path or another
  model. A body must be JSON (``{"alias": "challenger"}`` or ``{"version": 3}``), which a foreign
  web page cannot send without a CORS preflight the server never grants.
- Host headers are checked against the names the server was bound to (DNS rebinding).
"""

from __future__ import annotations

import collections
import hmac
import json
import os
import re
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cgankd.base.errors import CgankdError
from cgankd.base.net import loopback
from cgankd.serve.decode import BadInput

TOKEN_ENV = "CGANKD_SERVE_TOKEN"
ALIAS = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SOURCE = re.compile(r"^models:/([^/@]+)(?:@[^/@]+|/\d+)$")
LOOPBACK_NAMES = ["localhost", "127.0.0.1", "::1", "[::1]"]
HOW = f"set {TOKEN_ENV} (or serve.token_file, a file of mode 0600) when starting cgankd serve"
MIN_TOKEN = 32
FAILS, WINDOW_S = 5, 10.0


def load_token(token_file: str | None) -> str | None:
    """The management token: the environment first, then the file; None when neither is set."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        if len(token) < MIN_TOKEN:
            raise CgankdError(TOKEN_ENV, f"is {len(token)} characters; a token needs at least {MIN_TOKEN} "
                              "(e.g. openssl rand -hex 32)")
        return token
    if token_file is None:
        return None
    path = Path(token_file)
    try:
        st = path.stat()
    except OSError:
        raise CgankdError("param serve.token_file", "file not found") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CgankdError("param serve.token_file", f"must be readable by its owner alone (chmod 600), "
                          f"is {stat.filemode(st.st_mode)}")
    if st.st_uid != os.geteuid():
        raise CgankdError("param serve.token_file", f"is owned by uid {st.st_uid}, not by the server's user "
                          f"({os.geteuid()}): another user could have written it")
    token = path.read_text().strip()
    if len(token) < MIN_TOKEN:
        raise CgankdError("param serve.token_file", f"holds a token shorter than {MIN_TOKEN} characters "
                          "(e.g. openssl rand -hex 32)")
    return token


class Throttle:
    """Wrong tokens in the last ``WINDOW_S`` seconds; from ``FAILS`` on, every attempt is a 429."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock, self.fails = clock, collections.deque()

    def check(self, token: str | None, authorization: str | None) -> None:
        if token is None:
            raise BadInput(403, f"management is off: {HOW}")
        now = self.clock()
        while self.fails and now - self.fails[0] > WINDOW_S:
            self.fails.popleft()
        if len(self.fails) >= FAILS:
            raise BadInput(429, f"{FAILS} wrong tokens in {WINDOW_S:g} s: /reload refuses every attempt for "
                           f"{WINDOW_S - (now - self.fails[0]):.0f} s more")
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            self.fails.append(now)
            raise BadInput(401, "POST /reload needs the operator's token: Authorization: Bearer <token>")


def reload_target(source: str, content_type: str, body: bytes, query: dict[str, Any]) -> str:
    """What a /reload request may load: the server's own source, or ``{"alias": A}`` /
    ``{"version": N}`` of the registered model it serves."""
    if query:
        raise BadInput(400, "/reload takes no query parameters (and never a path): send JSON "
                       '{"alias": "<alias>"} or {"version": <n>} of the served model, or an empty body')
    if not body.strip():
        return source
    if content_type != "application/json":
        raise BadInput(415, "/reload: send the body as application/json")
    try:
        req = json.loads(body)
    except (ValueError, RecursionError):
        raise BadInput(400, "/reload: the body is not JSON") from None
    if not isinstance(req, dict) or set(req) - {"alias", "version"} or len(req) > 1:
        raise BadInput(400, '/reload: the body is {"alias": "<alias>"}, {"version": <n>} or {}')
    if not req:
        return source
    match = SOURCE.match(source)
    if match is None:
        raise BadInput(400, "/reload: this server serves a file, not a registered model; restart it to serve "
                       "another")
    name = match.group(1)
    if "alias" in req:
        if not isinstance(req["alias"], str) or not ALIAS.match(req["alias"]):
            raise BadInput(400, "/reload: alias must be letters, digits, '_' or '-'")
        return f"models:/{name}@{req['alias']}"
    version = req["version"]
    if isinstance(version, bool) or not isinstance(version, (int, str)) or not str(version).isdigit():
        raise BadInput(400, "/reload: version must be a positive integer")
    return f"models:/{name}/{int(version)}"


def allowed_hosts(host: str, configured: list[str] | None) -> list[str]:
    """Host headers the server answers: ``serve.allowed_hosts`` when set, else the loopback names
    for a loopback bind, the bound name (and loopback) for a named one, anything for a wildcard
    bind (0.0.0.0 / ::), where the caller is told to set ``serve.allowed_hosts``."""
    if configured:
        return list(configured)
    if loopback(host):
        return LOOPBACK_NAMES
    if host in ("0.0.0.0", "::", ""):
        return ["*"]
    return [host, *LOOPBACK_NAMES]


def public_message(message: str) -> str:
    """An error body without absolute paths: each is cut to its last component."""
    return re.sub(r"(?<![\w.])/(?:[^\s/:'\"]+/)+([^\s/:'\"]+)", r"\1", message)
