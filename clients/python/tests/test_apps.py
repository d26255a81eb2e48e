"""Rooms, presence, RPC and graph-algorithm jobs through the helpers."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from typing import List, cast

import pytest
from hub import Hub, mint, until

from hubbub import Backoff, Client, Event, HubError
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


async def test_rpc_through_an_http_backend(binary: str) -> None:
    class Backend(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
            call = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if call["data"].get("fail"):
                answer = {"error": {"code": "forbidden", "message": "not yours"}}
            else:
                answer = {"data": {"echo": call["data"], "user": call["user_id"]}}
            body = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    hub = Hub(binary, config=f'[[rpc.proxy]]\nprefix = "calc."\nurl = "http://127.0.0.1:{port}/rpc"\n')
    hub.start()
    try:
        async with Client(hub.url, token=mint("rita")) as c:
            assert await c.rpc("calc.echo", {"x": 1}) == {"echo": {"x": 1}, "user": "rita"}
            with pytest.raises(HubError) as err:
                await c.rpc("calc.echo", {"fail": True})
            assert err.value.code == "forbidden"
            with pytest.raises(HubError) as err2:
                await c.rpc("other.method", {})
            assert err2.value.code == "not_found"
    finally:
        hub.kill()
        server.shutdown()


async def test_graph_job_events_to_a_callback(hub: Hub) -> None:
    seen: List[str] = []
    async with Client(hub.url, token=mint("cal", jobs=True)) as c:
        job = await c.start_job(
            "connected_components",
            {"graph": {"nodes": [1, 2, 3], "edges": [[1, 2]]}},
            on_event=lambda ev: seen.append(ev.event_type),
        )
        await until(lambda: job.terminal is not None, what="terminal event")
        assert seen[0] == "graph" and seen[-1] == "algorithm_complete"
        assert job.channel not in await c.subscriptions()
