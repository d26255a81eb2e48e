"""Pieces that need no hub: backoff bounds, token expiry, codecs; and the overflow policy."""

from __future__ import annotations

import asyncio
import random
from typing import List, Union

from hub import Hub, mint
from hubbub import Backoff, Client, Event, Gap
from hubbub.codec import decode, encode
from hubbub.tokens import jwt_expiry


def test_backoff_is_full_jitter_within_bounds() -> None:
    b = Backoff(initial=0.1, max=0.4)
    rng = random.Random(7)
    for attempt in range(10):
        ceiling = min(0.4, 0.1 * 2**attempt)
        assert b.ceiling(attempt) == ceiling
        samples = [b.delay(attempt, rng) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8 and min(samples) < ceiling * 0.2  # spread, not fixed


def test_jwt_expiry_is_read_without_verifying() -> None:
    token = mint("x", ttl=100)
    exp = jwt_expiry(token)
    assert exp is not None and exp > 0
    assert jwt_expiry("not-a-jwt") is None


def test_both_codecs_round_trip() -> None:
    msg = {"type": "publish", "id": 1, "data": {"n": [1, 2.5, None, "é"]}}
    for enc in ("json", "msgpack"):
        assert decode(encode(enc, msg)) == msg


async def test_a_full_buffer_is_a_visible_overflow_gap(hub: Hub) -> None:
    async with Client(hub.url, token=mint("olga")) as c:
        sub = c.subscribe("chat:o", buffer=2)
        await sub
        for n in range(1, 6):
            await hub.publish("chat:o", "seq", {"seq": n})
        await c.ping()  # every event has arrived before the pong
        got: List[Union[Event, Gap]] = []

        async def drain() -> None:
            async for item in sub.items():
                got.append(item)
                if len(got) == 3:
                    return

        await asyncio.wait_for(drain(), 10)
        assert [i.data["seq"] for i in got[:2] if isinstance(i, Event)] == [1, 2]
        gap = got[2]
        assert isinstance(gap, Gap) and gap.reason == "overflow"
        assert (gap.after, gap.until) == (2, 5)
        await hub.publish("chat:o", "seq", {"seq": 6})
        ev = await asyncio.wait_for(sub.__anext__(), 10)
        assert ev.data["seq"] == 6


async def test_a_bad_url_fails_connect_instead_of_hanging() -> None:
    c = Client("not-a-websocket-url")
    try:
        await asyncio.wait_for(c.connect(), 5)
    except asyncio.TimeoutError:
        raise AssertionError("connect() hung on a bad URL") from None
    except Exception:
        pass
    else:
        raise AssertionError("connect() succeeded on a bad URL")
    assert c.state == "closed"
