"""Token handling: when a JWT expires, and how to ask the application for a fresh one."""

from __future__ import annotations

import base64
import inspect
import json
from typing import Awaitable, Callable, Optional, Union

#: A callback that returns a fresh token, plain or as a coroutine.
TokenProvider = Callable[[], Union[str, Awaitable[str]]]


def jwt_expiry(token: str) -> Optional[float]:
    """The token's ``exp`` (seconds since the epoch), read without verifying.

    The client only needs it to refresh in time; the hub verifies. ``None``
    for a token that is not a JWT or has no ``exp``.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    body = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(body))
    except (ValueError, TypeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, (int, float)) else None


async def fetch_token(provider: TokenProvider) -> str:
    """Calls the provider, awaiting it when it is a coroutine."""
    value = provider()
    if inspect.isawaitable(value):
        value = await value
    if not isinstance(value, str) or not value:
        raise ValueError("the token provider must return a non-empty string")
    return value
