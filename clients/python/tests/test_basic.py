"""Connect, subscribe, commands and both encodings against a real hub."""

from __future__ import annotations

import asyncio
import functools
from typing import List, cast

import pytest

from hub import Hub, mint, until
from hubbub import Client, Event, HubError, QueueFull, RequestTimeout
from hubbub.types import SystemMetrics


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
async def test_subscribe_and_receive(hub: Hub, encoding: str) -> None:
    async with Client(hub.url, token=mint("alice"), encoding=encoding) as c:
        assert c.info is not None and c.info.user_id == "alice"
        assert c.info.encoding == encoding
        sub = c.subscribe("chat:room1")
        entry = await sub
        assert entry.channel == "chat:room1" and entry.offset == 0
        for i in range(5):
            await hub.publish("chat:room1", "msg", {"n": i, "text": "héllo"})
        got: List[Event] = []
        async for ev in sub:
            got.append(ev)
            if len(got) == 5:
                break
        assert [e.data["n"] for e in got] == list(range(5))
        assert [e.offset for e in got] == [1, 2, 3, 4, 5]
        assert got[0].data["text"] == "héllo"


async def test_callbacks_instead_of_iteration(hub: Hub) -> None:
    seen: List[Event] = []
    states: List[str] = []
    c = Client(hub.url, token=mint("bob"))
    for s in ("connecting", "connected", "closed"):
        c.on(s, functools.partial(_note, states, s))
    await c.connect()
    await c.subscribe("chat:cb", on_event=seen.append)
    await hub.publish("chat:cb", "msg", {"x": 1})
    await until(lambda: len(seen) == 1, what="callback")
    await c.close()
    assert states == ["connecting", "connected", "closed"]
    assert c.state == "closed"


async def test_commands_publish_history_errors(hub: Hub) -> None:
    async with Client(hub.url, token=mint("carol")) as c:
        await c.ping()
        await c.subscribe("chat:h")
        p = await c.publish("chat:h", "msg", {"a": 1})
        assert p.offset == 1
        await c.publish("chat:h", "msg", {"a": 2})
        page = await c.history("chat:h", since_offset=1)
        assert [e.data["a"] for e in page.events] == [2]
        assert page.events[0].timestamp is not None
        with pytest.raises(HubError) as err:
            await c.publish("metrics", "system_metrics", {})
        assert err.value.code == "forbidden"
        with pytest.raises(HubError) as err2:
            await c.request({"type": "no_such_command"})
        assert err2.value.code == "unknown_type"
        assert "chat:h" in await c.subscriptions()


async def test_forbidden_subscription_raises_on_await(hub: Hub) -> None:
    async with Client(hub.url, token=mint("dave", channels=["chat:*"])) as c:
        sub = c.subscribe("orders")
        with pytest.raises(HubError) as err:
            await sub
        assert err.value.code == "forbidden"
        got = [e async for e in sub]  # the iterator ends
        assert got == []


async def test_builtin_stream_is_typed(hub: Hub) -> None:
    sample = {
        "node_id": "n1", "cpu_percent": 1.5, "memory_bytes": 1024,
        "events_per_second": 0.0, "connections": 1, "messages_per_second": 2.0,
    }
    async with Client(hub.url, token=mint("erin")) as c:
        sub = c.subscribe("metrics")
        await sub
        await hub.publish("metrics", "system_metrics", sample)
        async for ev in sub:
            assert ev.event_type == "system_metrics"
            m = cast(SystemMetrics, ev.data)
            assert m["connections"] == 1 and m["node_id"] == "n1"
            break


async def test_request_timeout_and_queue_overflow(hub: Hub) -> None:
    c = Client(hub.url, token=mint("frank"), queue_limit=2, request_timeout=0.3)
    # Not connected yet: commands wait in the queue, time out, and overflow is an error.
    t1 = asyncio.ensure_future(c.ping())
    t2 = asyncio.ensure_future(c.ping())
    await asyncio.sleep(0)
    with pytest.raises(QueueFull):
        await c.ping()
    with pytest.raises(RequestTimeout):
        await t1
    with pytest.raises(RequestTimeout):
        await t2
    await c.connect()
    await c.ping()
    await c.close()


def _note(states: List[str], state: str, _payload: object) -> None:
    states.append(state)
