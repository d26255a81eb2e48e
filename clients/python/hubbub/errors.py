"""Errors the client raises; each says what the caller can do about it."""

from __future__ import annotations

from typing import Optional


class HubbubError(Exception):
    """Base of every error this package raises."""


class HubError(HubbubError):
    """The hub answered a command with ``error`` (PROTOCOL.md section 9 codes)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class RequestTimeout(HubbubError):
    """No reply came within the command's timeout (the command may still run)."""


class QueueFull(HubbubError):
    """The bounded queue of sends made while disconnected is full; nothing was queued."""


class ConnectionLost(HubbubError):
    """The connection dropped after the command was sent and before its reply.

    Whether the hub ran it is unknown; retry only what is safe to repeat.
    """


class ClientClosed(HubbubError):
    """The client is closed (by ``close()`` or a close code that forbids reconnecting)."""

    def __init__(self, message: str, code: Optional[int] = None) -> None:
        super().__init__(message)
        self.code = code


class Unauthorized(HubbubError):
    """The hub refused the token (HTTP 401 at the handshake) and no provider can replace it."""
