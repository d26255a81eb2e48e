"""The two wire encodings (PROTOCOL.md section 1): JSON text frames, MessagePack binary frames."""

from __future__ import annotations

import json
from typing import Any, Dict, Union

SUBPROTOCOLS: Dict[str, str] = {
    "json": "hubbub.json.v1",
    "msgpack": "hubbub.msgpack.v1",
}


def check_encoding(encoding: str) -> None:
    """Refuses an unknown encoding, or ``msgpack`` without the ``msgpack`` package."""
    if encoding not in SUBPROTOCOLS:
        raise ValueError(f"encoding must be 'json' or 'msgpack', not {encoding!r}")
    if encoding == "msgpack":
        try:
            import msgpack  # noqa: F401
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ValueError("encoding 'msgpack' needs the msgpack package") from e


def encode(encoding: str, message: Dict[str, Any]) -> Union[str, bytes]:
    """One message as one frame's payload."""
    if encoding == "msgpack":
        import msgpack

        out: bytes = msgpack.packb(message, use_bin_type=True)
        return out
    return json.dumps(message, separators=(",", ":"))


def decode(frame: Union[str, bytes]) -> Dict[str, Any]:
    """One frame's payload as a message; text is JSON, binary MessagePack."""
    if isinstance(frame, str):
        value = json.loads(frame)
    else:
        import msgpack

        value = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    if not isinstance(value, dict):
        raise ValueError("a hub message is an object")
    return value
