"""Reconnects, recovery, gaps, close codes, tokens and liveness against a real hub."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
from typing import Any, List, Union

import pytest

from hub import Hub, mint, until
from hubbub import Backoff, Client, ClientClosed, Event, Gap, Recovered, Unauthorized
from hubbub.types import Disconnected, Reconnecting

FAST = Backoff(initial=0.05, max=0.2)


async def collect(items: Any, n: int, out: List[Union[Event, Gap]]) -> None:
    async for item in items:
        out.append(item)
        if len([i for i in out if isinstance(i, Event)]) >= n:
            return


async def test_api_kick_recovers_without_duplicates(hub: Hub) -> None:
    recovered: List[Recovered] = []
    async with Client(hub.url, token=mint("alice"), backoff=FAST) as c:
        c.on("recovered", recovered.append)
        sub = c.subscribe("chat:k")
        await sub
        for n in range(1, 4):
            await hub.publish("chat:k", "seq", {"seq": n})
        got: List[Union[Event, Gap]] = []
        await asyncio.wait_for(collect(sub.items(), 3, got), 10)
        assert c.info is not None
        first_conn = c.info.connection_id
        status, _ = await hub.api(
            "POST", f"/api/connections/{first_conn}/disconnect", {"reconnect": True}
        )
        assert status == 200
        await until(lambda: c.info is not None and c.info.connection_id != first_conn)
        for n in range(4, 7):
            await hub.publish("chat:k", "seq", {"seq": n})
        await asyncio.wait_for(collect(sub.items(), 6, got), 10)
        assert [i.data["seq"] for i in got if isinstance(i, Event)] == [1, 2, 3, 4, 5, 6]
        assert not [i for i in got if isinstance(i, Gap)]
        assert [r.channel for r in recovered] == ["chat:k"]


async def test_restart_of_memory_hub_is_a_visible_gap(hub: Hub) -> None:
    states: List[str] = []
    async with Client(hub.url, token=mint("bob"), backoff=FAST) as c:
        for s in ("disconnected", "reconnecting", "connected"):
            c.on(s, functools.partial(_note, states, s))
        sub = c.subscribe("chat:r")
        await sub
        await hub.publish("chat:r", "seq", {"seq": 1})
        got: List[Union[Event, Gap]] = []
        await asyncio.wait_for(collect(sub.items(), 1, got), 10)
        await asyncio.to_thread(hub.restart)
        await until(lambda: states[-1:] == ["connected"], what="reconnect")
        await hub.publish("chat:r", "seq", {"seq": 2})
        await asyncio.wait_for(collect(sub.items(), 2, got), 10)
        gaps = [g for g in got if isinstance(g, Gap)]
        assert len(gaps) == 1 and gaps[0].reason == "epoch_changed" and gaps[0].after == 1
        events = [e for e in got if isinstance(e, Event)]
        assert [e.data["seq"] for e in events] == [1, 2]
        assert events[1].offset == 1 and events[1].epoch != events[0].epoch
        assert sub.gaps == gaps


async def test_normal_close_by_hub_user_disconnect_without_reconnect(hub: Hub) -> None:
    closed: List[Disconnected] = []
    c = Client(hub.url, token=mint("carol"), backoff=FAST)
    c.on("closed", closed.append)
    await c.connect()
    status, _ = await hub.api("POST", "/api/users/carol/disconnect", {"reconnect": False})
    assert status == 200
    await until(lambda: c.state == "closed", what="closed")
    assert closed[0].code == 4100
    with pytest.raises(ClientClosed):
        await c.ping()


async def test_static_expired_token_is_refused(hub: Hub) -> None:
    c = Client(hub.url, token=mint("dave", ttl=-10), backoff=FAST)
    with pytest.raises(Unauthorized):
        await c.connect()
    assert c.state == "closed"


async def test_token_provider_recovers_from_a_refused_token(hub: Hub) -> None:
    calls: List[int] = []

    async def provider() -> str:
        calls.append(1)
        return mint("erin", ttl=-10 if len(calls) == 1 else 3600)

    async with Client(hub.url, token_provider=provider, backoff=FAST) as c:
        assert c.info is not None and c.info.user_id == "erin"
    assert len(calls) == 2


async def test_dead_hub_is_detected_by_application_ping(hub: Hub) -> None:
    seen: List[Disconnected] = []
    retries: List[Reconnecting] = []
    async with Client(
        hub.url, token=mint("frank"), backoff=FAST, ping_interval=0.2, ping_timeout=0.3
    ) as c:
        c.on("disconnected", seen.append)
        c.on("reconnecting", retries.append)
        assert hub.proc is not None
        os.kill(hub.proc.pid, signal.SIGSTOP)  # alive for TCP, silent for the protocol
        try:
            await until(lambda: bool(seen), what="ping timeout")
        finally:
            os.kill(hub.proc.pid, signal.SIGCONT)
        assert seen[0].code == 4010 and seen[0].reason == "ping timeout"
        await until(lambda: c.state == "connected", what="reconnect", timeout=15)
        assert retries and retries[0].attempt == 1


async def test_sends_queued_while_down_go_out_in_order(hub: Hub) -> None:
    async with Client(hub.url, token=mint("gina"), backoff=FAST) as c, Client(
        hub.url, token=mint("watcher")
    ) as w:
        sub = w.subscribe("chat:q")
        await sub
        await asyncio.to_thread(hub.kill)
        await until(lambda: c.state != "connected", what="disconnect")
        sends = [asyncio.ensure_future(c.publish("chat:q", "seq", {"seq": n})) for n in range(20)]
        await asyncio.sleep(0)
        await asyncio.to_thread(hub.start)
        results = await asyncio.wait_for(asyncio.gather(*sends), 15)
        assert [r.offset for r in results] == list(range(1, 21))


def _note(states: List[str], state: str, _payload: object) -> None:
    states.append(state)


async def test_rate_limited_close_waits_before_reconnecting(hub: Hub) -> None:
    seen: List[Disconnected] = []
    retries: List[Reconnecting] = []
    backoff = Backoff(initial=0.05, max=0.2, rate_limited=0.5)
    async with Client(hub.url, token=mint("hana"), backoff=backoff, request_timeout=2) as c:
        c.on("disconnected", seen.append)
        c.on("reconnecting", retries.append)
        flood = [asyncio.ensure_future(c.ping()) for _ in range(600)]
        await asyncio.gather(*flood, return_exceptions=True)
        await until(lambda: bool(retries), what="4029 and a reconnect")
        assert seen[0].code == 4029
        assert 0.5 <= retries[0].delay
        await until(lambda: c.state == "connected", what="reconnected")
