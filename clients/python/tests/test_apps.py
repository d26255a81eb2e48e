"""Rooms, presence and graph-algorithm jobs through the helpers."""

from __future__ import annotations

import asyncio
from typing import List, cast

from hub import Hub, mint, until
from hubbub import Backoff, Client, Event
from hubbub.types import AlgorithmComplete, Graph, UserJoined

FAST = Backoff(initial=0.05, max=0.2)


async def test_room_members_follow_joins_and_leaves(hub: Hub) -> None:
    async with Client(hub.url, token=mint("alice", info={"color": "red"})) as a, Client(
        hub.url, token=mint("bob")
    ) as b:
        room = await a.join_room("lobby", {"mood": "ok", "color": "blue"})
        assert room.user_ids == ["alice"]
        mine = list(room.members.values())[0]
        assert mine["info"] == {"mood": "ok", "color": "red"}  # the token's claim wins
        await b.join_room("lobby")
        await until(lambda: sorted(map(str, room.user_ids)) == ["alice", "bob"], what="bob joins")
        joined = [e async for e in _take(room, 1)][0]
        assert joined.event_type == "user_joined"
        assert cast(UserJoined, joined.data)["user_id"] == "bob"
        stats = await a.presence_stats("room:lobby")
        assert (stats.num_clients, stats.num_users) == (2, 2)
        await b.leave_room("lobby")
        await until(lambda: room.user_ids == ["alice"], what="bob leaves")
        assert [m["user_id"] for m in await a.presence("room:lobby")] == ["alice"]


async def test_room_is_rejoined_after_a_reconnect(hub: Hub) -> None:
    async with Client(hub.url, token=mint("carol"), backoff=FAST) as c:
        room = await c.join_room("den")
        assert c.info is not None
        old = c.info.connection_id
        await hub.api("POST", f"/api/connections/{old}/disconnect", {"reconnect": True})
        await until(lambda: c.info is not None and c.info.connection_id != old, what="reconnect")
        await until(lambda: list(room.members) == [c.info.connection_id if c.info else ""],
                    what="rejoined")
        assert [m["user_id"] for m in await c.presence("room:den")] == ["carol"]
        async with Client(hub.url, token=mint("dan")) as d:
            await d.join_room("den")
            joined = [e async for e in _take(room, 1)][0]
            assert cast(UserJoined, joined.data)["user_id"] == "dan"
        assert room.subscription.gaps == []


async def test_graph_job_streams_typed_events_to_its_terminal_event(hub: Hub) -> None:
    async with Client(hub.url, token=mint("dora", jobs=True)) as c:
        job = await c.start_job("bfs", {
            "graph": {"nodes": [1, 2, 3, 4], "edges": [[1, 2], [2, 3], [3, 4]]},
            "source": 1,
        })
        events: List[Event] = [e async for e in job.events()]
        assert events[0].event_type == "graph"
        assert len(cast(Graph, events[0].data)["nodes"]) == 4
        assert events[-1].event_type == "algorithm_complete"
        done = cast(AlgorithmComplete, events[-1].data)
        assert done["job_id"] == job.job_id
        assert done["result"]["order"] == [1, 2, 3, 4]
        offsets = [e.offset for e in events if e.offset is not None]
        assert offsets == sorted(set(offsets))


async def test_graph_job_can_be_stopped(hub: Hub) -> None:
    async with Client(hub.url, token=mint("eve", jobs=True)) as c:
        job = await c.start_job("bfs", {
            "graph": {"generator": "grid", "nodes": 400, "seed": 1},
            "source": 0, "step_delay_ms": 50,
        })
        await job.stop()
        terminal = await asyncio.wait_for(job.result(), 10)
        assert terminal.event_type == "algorithm_stopped"


async def _take(room: object, n: int):  # type: ignore[no-untyped-def]
    got = 0
    async for ev in room:  # type: ignore[attr-defined]
        yield ev
        got += 1
        if got >= n:
            return
