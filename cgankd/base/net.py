"""Whether a bind address keeps a server to this machine."""

from __future__ import annotations

import ipaddress


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
