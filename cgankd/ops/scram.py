"""A password as PostgreSQL stores it, computed on the client as psql's ``\\password`` does, so that the
server, its statement log and the process list never see the password itself."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


def scram_verifier(password: str, iterations: int = 4096, salt: bytes | None = None) -> str:
    """PostgreSQL's stored form of a SCRAM-SHA-256 password (RFC 5802/7677), which CREATE ROLE and ALTER
    ROLE accept as the password: ``SCRAM-SHA-256$<i>:<salt>$<StoredKey>:<ServerKey>``."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored = hashlib.sha256(hmac.new(salted, b"Client Key", hashlib.sha256).digest()).digest()
    server = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored)}:{b64(server)}"


def password_sql(password: str) -> str:
    """The ``PASSWORD '...'`` clause of CREATE / ALTER ROLE with the verifier, not the password."""
    return f"PASSWORD '{scram_verifier(password)}'"
