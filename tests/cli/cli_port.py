"""A free TCP port on 127.0.0.1 for a server a test starts."""

from __future__ import annotations

import servers


def free_port() -> int:
    return servers.free_port()
